package grpcapi

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkText refuses a request with a string field, at any depth and in any
// list or map, that PostgreSQL cannot store as text: one that is not valid
// UTF-8, or holds U+0000 (SQLSTATE 22021, which would otherwise surface as
// an internal error). Each such field gets a violation named by its proto
// field path. Every handler calls it before reading its request, so that a
// new field is covered without anyone remembering to.
func checkText(req proto.Message) error {
	m := req.ProtoReflect()
	if textFit(m) {
		return nil // the common case, found without building a field path
	}
	var fe fieldErrors
	checkTextIn(&fe, "", m)
	return fe.err()
}

// textFit reports whether every string in m, at any depth, is fit for a
// text column.
func textFit(m protoreflect.Message) bool {
	fit := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && fit; i++ {
				fit = valueFit(fd, l.Get(i))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				fit = (fd.MapKey().Kind() != protoreflect.StringKind || textProblem(k.String()) == "") && valueFit(fd.MapValue(), mv)
				return fit
			})
		default:
			fit = valueFit(fd, v)
		}
		return fit
	})
	return fit
}

func valueFit(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return textProblem(v.String()) == ""
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return textFit(v.Message())
	}
	return true
}

func checkTextIn(fe *fieldErrors, prefix string, m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				checkTextValue(fe, fmt.Sprintf("%s[%d]", path, i), fd, l.Get(i))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				key := k.String()
				if fd.MapKey().Kind() == protoreflect.StringKind {
					if d := textProblem(key); d != "" {
						fe.add(path, "keys "+d)
						return true
					}
				}
				checkTextValue(fe, fmt.Sprintf("%s[%q]", path, key), fd.MapValue(), mv)
				return true
			})
		default:
			checkTextValue(fe, path, fd, v)
		}
		return true
	})
}

func checkTextValue(fe *fieldErrors, path string, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if d := textProblem(v.String()); d != "" {
			fe.add(path, d)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		checkTextIn(fe, path+".", v.Message())
	}
}

// textProblem describes what makes s unfit for a text column, or is "".
func textProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "must not contain NUL (U+0000) characters"
	}
	return ""
}

// parseID reads a required id field. Only the canonical spelling of a UUID
// is accepted: 36 characters, hex digits in groups of 8-4-4-4-12 joined by
// hyphens, in either case (RFC 9562 reads hex digits case-insensitively);
// ids are always written back in lower case. uuid.Parse alone would also
// take "{...}", "urn:uuid:..." and 32 digits without hyphens: one id with
// several spellings, which the API does not promise and clients need not
// guess at.
func parseID(fe *fieldErrors, field, s string) uuid.UUID {
	if s == "" {
		fe.add(field, "is required")
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != len(uuid.Nil.String()) {
		fe.add(field, "must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)")
		return uuid.Nil
	}
	return id
}
