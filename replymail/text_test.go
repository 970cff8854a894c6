package replymail

import (
	"net/mail"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStripQuoted: what mail programs put under a reply is cut; what the
// author wrote stays as written.
func TestStripQuoted(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"gmail", "Sounds good, see you Tuesday.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Alice Seller <reply+abc@reply.example> wrote:\n> Ready to sign?\n> --\n> Stop these emails",
			"Sounds good, see you Tuesday."},
		{"gmail, the attribution wrapped", "Yes.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Alice Seller <\nreply+abc@reply.example> wrote:\n\n> Ready?",
			"Yes."},
		{"apple mail", "Fine by me.\n\n> On 2 Mar 2026, at 09:00, Alice Seller <a@b.example> wrote:\n> \n> Ready?",
			"Fine by me."},
		{"french", "D'accord.\n\nLe lun. 2 mars 2026 à 09:00, Alice <a@b.example> a écrit :\n> Prêt ?",
			"D'accord."},
		{"outlook", "Agreed.\r\n\r\n________________________________\r\nFrom: Dealroom <rooms@deals.example.com>\r\nSent: Monday, March 2, 2026 9:00 AM\r\nTo: Carol\r\nSubject: Alice mentioned you",
			"Agreed."},
		{"original message", "Agreed.\n\n-----Original Message-----\nFrom: Dealroom\nDate: today\n\nReady?",
			"Agreed."},
		{"from and sent without a rule", "Agreed.\n\nFrom: Dealroom <rooms@deals.example.com>\nSent: Monday\n\nReady?",
			"Agreed."},
		{"signature", "Thanks, I'll check.\n\n-- \nCarol Buyer\nAcme Corp", "Thanks, I'll check."},
		{"interleaved quotes", "> Can you sign by Friday?\nYes.\n> And the PO?\nNext week.", "Yes.\nNext week."},
		{"sent from my phone", "Ok!\n\nSent from my iPhone", "Ok!"},
		{"control characters left out", "Fine\x0c by me\x1b.", "Fine by me."},
		{"blank lines kept single", "First.\n\n\n\nSecond.\n", "First.\n\nSecond."},
		{"a wrote in the text is kept", "Bob wrote: the figures are in.\nMore soon.", "Bob wrote: the figures are in.\nMore soon."},
		{"only a quote", "On Mon, Alice <a@b.example> wrote:\n> Ready?", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, stripQuoted(tt.in))
		})
	}
}

func parse(t *testing.T, raw string) *mail.Message {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n")))
	require.NoError(t, err)
	return m
}

// TestMessageText: the text part wins, in any transfer encoding and
// charset; HTML alone is reduced to text without its quote; attachments
// are left out. Each text is checked as it is posted (stripQuoted).
func TestMessageText(t *testing.T) {
	for _, tt := range []struct{ name, raw, want string }{
		{"plain", "Subject: x\n\nHello\n", "Hello"},
		{"quoted-printable latin-1", "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9 cr=E8me, tr=\nes bien\n",
			"Café crème, tres bien"},
		{"base64 utf-8", "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n\nR3LDvMOfZSwg\nZGFua2Uu\n", "Grüße, danke."},
		{"windows-1252", "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: quoted-printable\n\n=93Yes=94 =96 ok\n", "“Yes” – ok"},
		{"alternative: the text part", "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>html</p>\n--b\nContent-Type: text/plain; charset=utf-8\n\nplain\n--b--\n",
			"plain"},
		{"mixed with an attachment", "Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nnot this\n--m\nContent-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/plain\n\nthis\n--a--\n--m--\n",
			"this"},
		{"flowed", "Content-Type: text/plain; format=flowed\n\nA long line that was \nbroken by the sender.\n> quoted \n> stays\n", "A long line that was broken by the sender."},
		{"html only", "Content-Type: text/html; charset=utf-8\n\n<html><head><style>p{}</style></head><body><div>Looks <b>good</b>.</div><div>Second line<br>third</div><p>A paragraph,</p><ul><li>a</li><li>list.</li></ul>" +
			`<div class="gmail_quote"><div class="gmail_attr">On Mon, Alice wrote:</div><blockquote class="gmail_quote">Ready?</blockquote></div></body></html>`,
			"Looks good.\nSecond line\nthird\n\nA paragraph,\n\n- a\n- list."},
		{"html of outlook", "Content-Type: text/html\n\n<div>Agreed.</div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> Dealroom</div><div>Ready?</div>", "Agreed."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := messageText(parse(t, tt.raw))
			require.NoError(t, err)
			assert.Equal(t, tt.want, stripQuoted(got))
		})
	}
}

// TestMessageTextRefused: what cannot be read as text is refused, with a
// reason fit for the sender.
func TestMessageTextRefused(t *testing.T) {
	for _, tt := range []struct{ name, raw, want string }{
		{"unknown charset", "Content-Type: text/plain; charset=x-klingon\n\nnuqneH\n", `the charset "x-klingon" is not supported`},
		{"not utf-8", "Content-Type: text/plain; charset=utf-8\n\n\xff\xfe\n", "not valid UTF-8"},
		{"unknown encoding", "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n", "not supported"},
		{"no text", "Content-Type: image/png\n\n\x89PNG\n", "no text part"},
		{"too deep", "Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: multipart/mixed; boundary=d\n\n--d\nContent-Type: multipart/mixed; boundary=e\n\n--e\nContent-Type: multipart/mixed; boundary=f\n\n--f\n\nx\n--f--\n--e--\n--d--\n--c--\n--b--\n--a--\n", "nested too deep"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := messageText(parse(t, tt.raw))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
