package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/textproto"
	"syscall"

	gomail "github.com/wneessen/go-mail"

	"dealroom"
)

// Temporary reports whether err is a failure that may pass if the same
// message is sent again later: a 4xx answer of the server, or a server that
// could not be reached or stopped answering (refused, reset, timed out). A
// 5xx answer, a certificate that does not verify, a message that is not
// valid and a cancelled context are not temporary.
func Temporary(err error) bool {
	if err == nil || dealroom.ErrorCode(err) == dealroom.EINVALID {
		return false
	}
	// An answer of the server: its code decides.
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return reply.Code >= 400 && reply.Code < 500
	}
	var send *gomail.SendError
	if errors.As(err, &send) {
		if code := send.ErrorCode(); code != 0 {
			return code >= 400 && code < 500
		}
		switch send.Reason {
		case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose,
			gomail.ErrWriteContent, gomail.ErrConnCheck, gomail.ErrSMTPReset:
			// No answer: the connection failed in the middle.
			return true
		}
		return false // the message itself (no sender, no recipient, ...)
	}
	// TLS that cannot work stays so.
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	var header tls.RecordHeaderError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &header) {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTemporary || dns.IsTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	var op *net.OpError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &op) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed)
}
