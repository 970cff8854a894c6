package replymail

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/text/encoding/htmlindex"
)

// Bounds on the walk of a message's parts.
const (
	maxDepth     = 5
	maxParts     = 100
	maxTextBytes = 1 << 20 // a text part, decoded
)

// errNoText answers a message with no text/plain or text/html part.
var errNoText = errors.New("the message has no text part")

// unreadable is a fault of the message itself, told to its sender.
type unreadable struct{ msg string }

func (e unreadable) Error() string { return e.msg }

func unreadablef(format string, a ...any) error { return unreadable{fmt.Sprintf(format, a...)} }

// found keeps the first text/plain and text/html parts of a message.
type found struct {
	plain, html *string
	parts       int
}

// messageText returns what the author wrote in msg, as plain text: its
// first text/plain part, or its first text/html part reduced to text
// when it has none; attachments are left out. Quoted text is still in
// it (see stripQuoted). The text is UTF-8: other charsets are converted.
func messageText(msg *mail.Message) (string, error) {
	var f found
	if err := f.walk(textproto.MIMEHeader(msg.Header), msg.Body, 0); err != nil {
		return "", err
	}
	switch {
	case f.plain != nil:
		return *f.plain, nil
	case f.html != nil:
		return htmlText(*f.html)
	}
	return "", errNoText
}

func (f *found) walk(h textproto.MIMEHeader, body io.Reader, depth int) error {
	if f.parts++; f.parts > maxParts {
		return unreadablef("the message has more than %d parts", maxParts)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain" // RFC 2045's default
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil // a part that cannot be read is not the text
	}
	if d, _, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && d == "attachment" {
		return nil
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= maxDepth {
			return unreadablef("the message's parts are nested too deep")
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return unreadablef("the message's parts cannot be read")
			}
			if err := f.walk(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	case mt == "text/plain" && f.plain == nil, mt == "text/html" && f.html == nil:
		s, err := decodePart(h, params, body)
		if err != nil {
			return err
		}
		if mt == "text/plain" {
			if strings.EqualFold(params["format"], "flowed") {
				s = unflow(s, strings.EqualFold(params["delsp"], "yes"))
			}
			f.plain = &s
		} else {
			f.html = &s
		}
	}
	return nil
}

// decodePart undoes a part's transfer encoding and charset.
func decodePart(h textproto.MIMEHeader, params map[string]string, body io.Reader) (string, error) {
	switch enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); enc {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // it skips line breaks
	case "", "7bit", "8bit", "binary":
	default:
		return "", unreadablef("the transfer encoding %q is not supported", clip(enc))
	}
	b, err := io.ReadAll(io.LimitReader(body, maxTextBytes+1))
	if err != nil {
		return "", unreadablef("the text cannot be decoded")
	}
	if len(b) > maxTextBytes {
		return "", unreadablef("the text is longer than %d bytes", maxTextBytes)
	}
	switch cs := strings.ToLower(strings.TrimSpace(params["charset"])); cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		if !utf8.Valid(b) {
			return "", unreadablef("the text is not valid UTF-8")
		}
		return string(b), nil
	default:
		e, err := htmlindex.Get(cs)
		if err != nil {
			return "", unreadablef("the charset %q is not supported: send UTF-8", clip(cs))
		}
		out, err := e.NewDecoder().Bytes(b)
		if err != nil || !utf8.Valid(out) {
			return "", unreadablef("the text is not valid %s", clip(cs))
		}
		return string(out), nil
	}
}

// unflow joins the lines of format=flowed text (RFC 3676) that its
// sender broke for width: a line ending in a space goes on in the next.
// Quoted lines are left as they are (they are removed later).
func unflow(s string, delsp bool) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var out []string
	joining := false
	for _, l := range lines {
		quoted := strings.HasPrefix(l, ">")
		if !quoted {
			l = strings.TrimPrefix(l, " ") // space-stuffing
		}
		if joining && !quoted {
			out[len(out)-1] += l
		} else {
			out = append(out, l)
		}
		joining = !quoted && l != "-- " && strings.HasSuffix(l, " ")
		if joining && delsp {
			out[len(out)-1] = strings.TrimSuffix(out[len(out)-1], " ")
		}
	}
	return strings.Join(out, "\n")
}

// htmlText reduces an HTML body to its text: blocks become lines, and
// what mail programs put around a quoted message (a blockquote, Gmail's
// and Yahoo's quote blocks, Outlook's header of the message replied to
// and everything after it) is left out.
func htmlText(s string) (string, error) {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return "", unreadablef("the HTML text cannot be read")
	}
	var b strings.Builder
	stop := false
	space := false // a space is due before the next word on the line
	var walk func(n *html.Node, pre bool)
	walk = func(n *html.Node, pre bool) {
		if stop {
			return
		}
		switch n.Type {
		case html.TextNode:
			if pre {
				b.WriteString(n.Data)
				return
			}
			words := strings.Fields(n.Data)
			if len(words) == 0 {
				space = space || n.Data != ""
				return
			}
			line := !strings.HasSuffix(b.String(), "\n") && b.Len() > 0
			if line && (space || strings.TrimLeftFunc(n.Data, unicode.IsSpace) != n.Data) {
				b.WriteString(" ")
			}
			b.WriteString(strings.Join(words, " "))
			space = strings.TrimRightFunc(n.Data, unicode.IsSpace) != n.Data
			return
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Head, atom.Title, atom.Blockquote:
				return
			case atom.Br:
				b.WriteString("\n")
				space = false
				return
			}
			id, class := attr(n, "id"), attr(n, "class")
			if id == "divRplyFwdMsg" || id == "appendonsend" || strings.Contains(class, "moz-cite-prefix") {
				stop = true // Outlook's and Thunderbird's start of the message replied to
				return
			}
			if strings.Contains(class, "gmail_quote") || strings.Contains(class, "yahoo_quoted") {
				return
			}
		}
		// A block starts and ends its own line; a paragraph is set apart
		// by an empty line.
		lines := 0
		if n.Type == html.ElementNode {
			lines = blockLines(n.DataAtom)
		}
		if lines > 0 {
			endLines(&b, lines)
			space = false
			if n.DataAtom == atom.Li {
				b.WriteString("- ")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, pre || n.DataAtom == atom.Pre)
		}
		if lines > 0 {
			endLines(&b, lines)
			space = false
		}
	}
	walk(doc, false)
	return b.String(), nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// blockLines is 1 for an element that stands on its own lines, 2 for one
// set apart by an empty line, 0 for others.
func blockLines(a atom.Atom) int {
	switch a {
	case atom.P, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Ul, atom.Ol, atom.Table, atom.Pre:
		return 2
	case atom.Div, atom.Li, atom.Tr, atom.Hr, atom.Section, atom.Article, atom.Header, atom.Footer:
		return 1
	}
	return 0
}

// endLines ends b with n line breaks, unless it is empty.
func endLines(b *strings.Builder, n int) {
	s := b.String()
	if s == "" {
		return
	}
	have := len(s) - len(strings.TrimRight(s, "\n"))
	for ; have < n; have++ {
		b.WriteString("\n")
	}
}

// stripQuoted returns what the author wrote above the message they
// answer: it cuts the text at the first line that starts a quote ("On
// <date>, <name> wrote:", also wrapped over two lines and in a few other
// languages; "-----Original Message-----"; Outlook's line of underscores
// or its "From:" and "Sent:" header) or a signature ("-- "), leaves out
// every line that starts with ">", and a "Sent from my ..." last line.
func stripQuoted(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return -1 // a room's text holds none
		}
		return r
	}, s)
	lines := strings.Split(s, "\n")
	if i := quoteStart(lines); i >= 0 {
		lines = lines[:i]
	}
	var kept []string
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimLeft(l, " \t"), ">") {
			kept = append(kept, strings.TrimRight(l, " \t"))
		}
	}
	for len(kept) > 0 && strings.TrimSpace(kept[len(kept)-1]) == "" {
		kept = kept[:len(kept)-1]
	}
	if n := len(kept); n > 0 && strings.HasPrefix(strings.TrimSpace(kept[n-1]), "Sent from my ") {
		kept = kept[:n-1]
	}
	// At most one empty line in a row.
	var out []string
	for _, l := range kept {
		if l == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// wroteEndings end the line with which mail programs introduce the
// message replied to, in a few languages.
var wroteEndings = []string{"wrote:", "a écrit :", "a écrit:", "schrieb:", "escribió:", "ha scritto:", "escreveu:", "schreef:"}

// quoteStart returns the index of the first line that starts the quoted
// message or a signature, -1 when none does.
func quoteStart(lines []string) int {
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case l == "-- " || l == "--":
			return i
		case strings.HasPrefix(t, "-----") && strings.Contains(strings.ToLower(t), "original message"):
			return i
		case strings.HasPrefix(t, "_____") && strings.Trim(t, "_") == "" && i+1 < len(lines) && headerLine(lines[i+1], "From"):
			return i
		case headerLine(l, "From") && i+1 < len(lines) && (headerLine(lines[i+1], "Sent") || headerLine(lines[i+1], "Date")):
			return i
		case wrote(t):
			return i
		case i+1 < len(lines) && !strings.HasPrefix(t, ">") && wrote(t+" "+strings.TrimSpace(lines[i+1])) && introduces(t):
			return i // "On ... <someone@" / "example.com> wrote:", wrapped
		}
	}
	return -1
}

func headerLine(l, name string) bool {
	return strings.HasPrefix(strings.TrimLeft(l, "*"), name+":")
}

// wrote reports whether a line introduces the message replied to.
func wrote(l string) bool {
	if !introduces(l) {
		return false
	}
	for _, e := range wroteEndings {
		if strings.HasSuffix(l, e) {
			return true
		}
	}
	return false
}

// introduces reports whether a line starts as "On <date> ... wrote:"
// does, in the languages of wroteEndings.
func introduces(l string) bool {
	for _, p := range []string{"On ", "Le ", "Am ", "El ", "Il ", "Em ", "Op "} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// clip shortens a value quoted back to the sender.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return string(bytes.ToValidUTF8([]byte(s), nil))
}
