package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// checkJSONBody checks what encoding/json lets through in a request body:
//
//   - a member name that appears twice in one object, exactly or in another
//     case: encoding/json keeps the last, and matches struct fields case-
//     insensitively (with the Kelvin sign for k and the long s for s), so
//     {"scopes":["read"],"Scopes":["admin"]} issued an admin token while a
//     filter in front of the API saw ["read"];
//   - a member name of the request object that is not lower case: no field
//     is, and encoding/json would map "Scopes" to scopes;
//   - invalid UTF-8, and \u escapes of half a surrogate pair, anywhere:
//     encoding/json replaces both with U+FFFD, the API documents valid
//     UTF-8, and a replaced username is another user's name;
//   - objects and arrays nested deeper than maxJSONDepth: the scan recurses
//     once per level.
//
// It is one pass over the body with no allocation for the usual body (names
// with escapes and objects of many members allocate). It leaves syntax to
// encoding/json: on malformed JSON it stops and returns nil, so that the
// decoder reports the syntax error.
func checkJSONBody(body []byte) error {
	s := jsonScanner{b: body}
	err := s.value(true)
	if errors.Is(err, errMalformed) {
		return nil
	}
	return err
}

// errMalformed stops the scan: encoding/json reports the syntax error.
var errMalformed = errors.New("malformed JSON")

// manyMembers is the member count above which an object's names are
// compared through a map instead of pairwise.
const manyMembers = 16

// maxJSONDepth is how deep a request body may nest objects and arrays (the
// request object is level 1). No request nests deeper than 3; the limit
// bounds the scanner's recursion, whose object frames are about 1 KB each.
const maxJSONDepth = 64

// errTooDeep refuses a body nested deeper than maxJSONDepth.
var errTooDeep = fmt.Errorf("the request body is nested deeper than %d levels", maxJSONDepth)

type jsonScanner struct {
	b     []byte
	i     int
	depth int // objects and arrays open around s.i
}

func (s *jsonScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// value scans one JSON value; top is true for the request object itself.
func (s *jsonScanner) value(top bool) error {
	s.skipSpace()
	if s.i >= len(s.b) {
		return errMalformed
	}
	switch s.b[s.i] {
	case '{', '[':
		if s.depth == maxJSONDepth {
			return errTooDeep
		}
		s.depth++
		var err error
		if s.b[s.i] == '{' {
			err = s.object(top)
		} else {
			err = s.array()
		}
		s.depth--
		return err
	case '"':
		_, _, err := s.str()
		return err
	}
	// A number or a literal: encoding/json checks it.
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return nil
		}
		s.i++
	}
	return nil
}

func (s *jsonScanner) array() error {
	s.i++ // '['
	if s.closes(']') {
		return nil
	}
	for {
		if err := s.value(false); err != nil {
			return err
		}
		if more, err := s.more(']'); !more {
			return err
		}
	}
}

// closes skips space and reports whether the container ends here with end
// (an empty array or object), consuming end if so.
func (s *jsonScanner) closes(end byte) bool {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == end {
		s.i++
		return true
	}
	return false
}

// more scans what follows an element or a member: true after a ',', false
// (with a nil error) after the container's closing end.
func (s *jsonScanner) more(end byte) (bool, error) {
	s.skipSpace()
	if s.i >= len(s.b) {
		return false, errMalformed
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, nil
	case end:
		s.i++
		return false, nil
	}
	return false, errMalformed
}

// memberName is a scanned name: raw is the text between the quotes, and
// decoded is set only when raw holds escapes.
type memberName struct {
	raw     []byte
	decoded string
	escaped bool
}

func (n memberName) String() string {
	if n.escaped {
		return n.decoded
	}
	return string(n.raw)
}

func (n memberName) bytes() []byte {
	if n.escaped {
		return []byte(n.decoded)
	}
	return n.raw
}

func (s *jsonScanner) object(top bool) error {
	s.i++ // '{'
	var small [manyMembers]memberName
	names := small[:0]
	var folded map[string]memberName // past manyMembers: fold key -> first name
	if s.closes('}') {
		return nil
	}
	for {
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errMalformed
		}
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		n := memberName{raw: raw, escaped: escaped}
		if escaped {
			if n.decoded, err = unquoteName(raw); err != nil {
				return errMalformed
			}
		}
		if top && !lowerName(n.bytes()) {
			return fmt.Errorf("member %q is not allowed: member names are lower case, and case-sensitive", n.String())
		}
		if folded == nil && len(names) < manyMembers {
			for _, prev := range names {
				if bytes.EqualFold(prev.bytes(), n.bytes()) {
					return duplicateMember(prev, n)
				}
			}
			names = append(names, n)
		} else {
			if folded == nil {
				folded = make(map[string]memberName, 2*manyMembers)
				for _, prev := range names {
					folded[foldKey(prev.String())] = prev
				}
			}
			k := foldKey(n.String())
			if prev, dup := folded[k]; dup {
				return duplicateMember(prev, n)
			}
			folded[k] = n
		}
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errMalformed
		}
		s.i++
		if err := s.value(false); err != nil {
			return err
		}
		if more, err := s.more('}'); !more {
			return err
		}
	}
}

func duplicateMember(prev, n memberName) error {
	if prev.String() == n.String() {
		return fmt.Errorf("member %q appears more than once in one object", n.String())
	}
	return fmt.Errorf("members %q and %q differ only in case: member names are case-sensitive and may appear once", prev.String(), n.String())
}

// foldKey maps names that are equal under simple case folding to one key
// (for the Kelvin sign and the long s as well: their upper case is K and S).
func foldKey(name string) string { return strings.ToLower(strings.ToUpper(name)) }

// lowerName reports whether a request member name could be a field:
// lower-case ASCII letters, digits and '_'.
func lowerName(b []byte) bool {
	for _, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// str scans a string starting at its quote and returns its raw content,
// whether it holds escapes, and an error for invalid UTF-8 or half of a
// surrogate pair.
func (s *jsonScanner) str() (raw []byte, escaped bool, err error) {
	s.i++ // '"'
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false, errMalformed
			}
			if s.b[s.i+1] != 'u' {
				s.i += 2
				continue
			}
			r, ok := s.hex4(s.i + 2)
			if !ok {
				return nil, false, errMalformed
			}
			at := s.i
			s.i += 6
			if !utf16.IsSurrogate(r) {
				continue
			}
			if r < 0xdc00 && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				if r2, ok := s.hex4(s.i + 2); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
					s.i += 6
					continue
				}
			}
			return nil, false, fmt.Errorf("the \\u escape at byte %d is half of a UTF-16 surrogate pair, not a character", at)
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size <= 1 {
				return nil, false, fmt.Errorf("the request body is not valid UTF-8 (byte %d)", s.i)
			}
			s.i += size
		}
	}
	return nil, false, errMalformed
}

// hex4 reads four hex digits at i.
func (s *jsonScanner) hex4(i int) (rune, bool) {
	if i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unquoteName decodes a name with escapes (rare in requests; it allocates).
func unquoteName(raw []byte) (string, error) {
	var out string
	err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &out)
	return out, err
}
