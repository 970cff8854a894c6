package room

import (
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"dealroom"
)

// Mentions is the outcome of resolving the @-mentions of a text.
type Mentions struct {
	// Users are the members who will be notified, in order of appearance.
	Users []string
	// Unresolved are the names written after @ that reach no one: nobody of
	// that name is a member, or a customer was named in an internal item.
	Unresolved []string
}

// ResolveMentions finds the @-mentions in text and resolves them to the
// room's members. "@Dave Reader" matches a member by full name, "@dave" by
// user id, by first name when only one member has it, or by the name
// written without spaces. An @ inside a word (an email address) is not a
// mention. Customers cannot be mentioned in internal items: they would
// never see them.
func ResolveMentions(text string, members []Member, v dealroom.Visibility) Mentions {
	var out Mentions
	if !strings.Contains(text, "@") {
		return out
	}
	// Longest names first, so "@Ann Lee" wins over "@Ann".
	byName := slices.Clone(members)
	sort.SliceStable(byName, func(i, j int) bool { return len(byName[i].Name) > len(byName[j].Name) })
	firsts := map[string]int{}
	for _, m := range members {
		firsts[strings.ToLower(firstWord(m.Name))]++
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
		m, n := matchMember(rest, byName, firsts)
		token := mentionToken(rest)
		switch {
		case m != nil && v == dealroom.Internal && m.Kind != dealroom.Staff:
			out.Unresolved = appendNew(out.Unresolved, rest[:n])
		case m != nil:
			out.Users = appendNew(out.Users, m.UserID)
		case token != "":
			out.Unresolved = appendNew(out.Unresolved, token)
			n = len(token)
		}
		prev = r
		i += size + n
	}
	return out
}

// matchMember returns the member named at the start of s and how many
// bytes of s name them.
func matchMember(s string, byName []Member, firsts map[string]int) (*Member, int) {
	for i := range byName {
		name := byName[i].Name
		if len(s) >= len(name) && strings.EqualFold(s[:len(name)], name) && endsWord(s[len(name):]) {
			return &byName[i], len(name)
		}
	}
	token := mentionToken(s)
	if token == "" {
		return nil, 0
	}
	for i := range byName {
		m := &byName[i]
		first := firstWord(m.Name)
		if strings.EqualFold(token, m.UserID) ||
			strings.EqualFold(token, strings.ReplaceAll(m.Name, " ", "")) ||
			(strings.EqualFold(token, first) && firsts[strings.ToLower(first)] == 1) {
			return m, len(token)
		}
	}
	return nil, 0
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
