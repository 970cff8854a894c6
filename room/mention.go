package room

import (
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"dealroom"
)

// MaxMentions is the most @-mentions one text (a message's body, a task's
// description) may make. Every @name counts, repeats and names that reach
// no one included: a text of hundreds of @s is a flood, not a message, and
// each mention may notify someone.
const MaxMentions = 50

// Mentions is the outcome of resolving the @-mentions of a text.
type Mentions struct {
	// Users are the members who will be notified, in order of appearance.
	Users []string
	// Unresolved are the names written after @ that reach no one: nobody of
	// that name is a member, or a customer was named in an internal item.
	Unresolved []string
}

// ResolveMentions finds the @-mentions in text and resolves them to the
// room's members (see Directory.Find for the rule), however many there
// are. Customers cannot be mentioned in internal items: they would never
// see them.
func ResolveMentions(text string, members []Member, v dealroom.Visibility) Mentions {
	if !strings.Contains(text, "@") {
		return Mentions{}
	}
	return NewDirectory(members).find(text, -1).resolve(v)
}

// Directory is a room's members prepared for resolving @-mentions: the
// name forms are sorted and lowercased once per member list, so that each
// @ costs a map lookup and the few names that start with the same word.
type Directory struct {
	members []Member
	// byLead holds, by the lowercased first word of their name (its
	// letters, digits and _), the members whose full name may follow an
	// @: grouped by the length of the name, longest first, and in each
	// group by the lowercased name.
	byLead map[string][]nameGroup
	// byHandle maps a lowercased handle (user id, name without spaces,
	// first name when only one member has it) to its member; when two
	// members share a handle, the one with the longer name has it.
	byHandle map[string]int
}

// nameGroup is the members whose names have n bytes, by lowercased name.
type nameGroup struct {
	n     int
	names map[string]int
}

// NewDirectory prepares members for resolving mentions.
func NewDirectory(members []Member) *Directory {
	d := &Directory{members: members, byLead: make(map[string][]nameGroup), byHandle: make(map[string]int, 3*len(members))}
	// Longest names first, so "@Ann Lee" wins over "@Ann".
	order := make([]int, len(members))
	lower := make([]string, len(members)) // each name lowercased once
	firsts := make(map[string]int, len(members))
	for i := range members {
		order[i] = i
		lower[i] = strings.ToLower(members[i].Name)
		firsts[firstWord(lower[i])]++
	}
	sort.SliceStable(order, func(i, j int) bool { return len(members[order[i]].Name) > len(members[order[j]].Name) })
	for _, i := range order {
		n := len(members[i].Name)
		if n == 0 {
			continue
		}
		lead := leadWord(lower[i])
		groups := d.byLead[lead]
		if len(groups) == 0 || groups[len(groups)-1].n != n {
			groups = append(groups, nameGroup{n: n, names: map[string]int{}})
			d.byLead[lead] = groups
		}
		if _, taken := groups[len(groups)-1].names[lower[i]]; !taken {
			groups[len(groups)-1].names[lower[i]] = i
		}
	}
	handle := func(h string, i int) {
		if _, taken := d.byHandle[h]; h != "" && !taken {
			d.byHandle[h] = i
		}
	}
	for _, i := range order {
		handle(strings.ToLower(members[i].UserID), i)
		handle(strings.ReplaceAll(lower[i], " ", ""), i)
		if first := firstWord(lower[i]); firsts[first] == 1 {
			handle(first, i)
		}
	}
	return d
}

// Found is the @-mentions of a text as a Directory found them, before the
// visibility of the item they are in is known.
type Found struct {
	text string
	hits []hit
	// TooMany tells that the text makes more than MaxMentions mentions
	// (the search stopped there).
	TooMany bool
}

// hit is one @-mention: what was written and whom it names (user empty
// when nobody).
type hit struct {
	written string
	user    string
	kind    dealroom.Kind
}

// Find finds the @-mentions in text, up to MaxMentions of them (more set
// TooMany). The rule: an @ is a mention when it does not follow a letter,
// a digit, _ or a full stop (so an email address is not one). What follows
// it names a member when it is their full name (case-insensitive, the
// longest name first, followed by anything but a letter, digit or _), or
// else when its handle (the letters, digits, _, . and - that follow,
// without trailing . and -) is a member's user id, their name without
// spaces, or their first name when only one member has it
// (case-insensitive). A handle that names no one is unresolved.
func (d *Directory) Find(text string) Found {
	return d.find(text, MaxMentions)
}

// find is Find with max mentions at most (-1: no limit).
func (d *Directory) find(text string, max int) Found {
	out := Found{text: text}
	if !strings.Contains(text, "@") {
		return out
	}
	var prev rune
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r != '@' || isWordRune(prev) || prev == '.' {
			prev = r
			i += size
			continue
		}
		rest := text[i+size:]
		m, n := d.match(rest)
		switch {
		case m != nil:
			out.hits = append(out.hits, hit{written: rest[:n], user: m.UserID, kind: m.Kind})
		default:
			if token := mentionToken(rest); token != "" {
				out.hits = append(out.hits, hit{written: token})
				n = len(token)
			}
		}
		if max >= 0 && len(out.hits) > max {
			out.hits, out.TooMany = out.hits[:max], true
			return out
		}
		prev = r
		i += size + n
	}
	return out
}

// match returns the member named at the start of s and how many bytes of
// s name them.
func (d *Directory) match(s string) (*Member, int) {
	for _, g := range d.byLead[strings.ToLower(leadWord(s))] {
		if len(s) < g.n || !endsWord(s[g.n:]) {
			continue
		}
		if i, ok := g.names[strings.ToLower(s[:g.n])]; ok {
			return &d.members[i], g.n
		}
	}
	token := mentionToken(s)
	if token == "" {
		return nil, 0
	}
	if i, ok := d.byHandle[strings.ToLower(token)]; ok {
		return &d.members[i], len(token)
	}
	return nil, 0
}

// resolve turns what was found into the mentions of an item of
// visibility v, with the members as they were found.
func (f Found) resolve(v dealroom.Visibility) Mentions {
	var out Mentions
	for _, h := range f.hits {
		switch {
		case h.user == "":
			out.Unresolved = appendNew(out.Unresolved, h.written)
		case v == dealroom.Internal && h.kind != dealroom.Staff:
			out.Unresolved = appendNew(out.Unresolved, h.written)
		default:
			out.Users = appendNew(out.Users, h.user)
		}
	}
	return out
}

// Check resolves the mentions of text, inside a decision, for an item of
// visibility vis. When f was found in that text, it reads only the members
// named, so that the decision's work grows neither with the room nor with
// the text: each must still be a member (a customer only in a shared item),
// or their mention reaches no one. A text that changed since (a concurrent
// edit) is resolved again against the view's members. A text over
// MaxMentions is refused (EINVALID on field).
func (f Found) Check(v View, text string, vis dealroom.Visibility, field string) (Mentions, error) {
	if f.text != text {
		members, err := v.Members()
		if err != nil {
			return Mentions{}, err
		}
		f = NewDirectory(members).Find(text)
	}
	if f.TooMany {
		return Mentions{}, dealroom.Invalid(field, "%s makes more than %d @-mentions; a text may mention at most %d", field, MaxMentions, MaxMentions)
	}
	now := make(map[string]*Member)
	var out Mentions
	for _, h := range f.hits {
		if h.user == "" {
			out.Unresolved = appendNew(out.Unresolved, h.written)
			continue
		}
		m, seen := now[h.user]
		if !seen {
			var err error
			if m, err = v.Member(h.user); err != nil {
				return Mentions{}, err
			}
			now[h.user] = m
		}
		if m == nil || (vis == dealroom.Internal && m.Kind != dealroom.Staff) {
			out.Unresolved = appendNew(out.Unresolved, h.written)
			continue
		}
		out.Users = appendNew(out.Users, h.user)
	}
	return out, nil
}

// mentionToken returns the handle at the start of s: letters, digits and
// ._- without trailing punctuation.
func mentionToken(s string) string {
	end := 0
	for i, r := range s {
		if !isWordRune(r) && r != '.' && r != '-' {
			break
		}
		end = i + utf8.RuneLen(r)
	}
	return strings.TrimRight(s[:end], ".-")
}

// leadWord returns the letters, digits and _ at the start of s.
func leadWord(s string) string {
	for i, r := range s {
		if !isWordRune(r) {
			return s[:i]
		}
	}
	return s
}

func endsWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s == "" || !isWordRune(r)
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

func firstWord(name string) string {
	if i := strings.IndexFunc(name, unicode.IsSpace); i > 0 {
		return name[:i]
	}
	return name
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
