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
	var fe fieldErrors
	checkTextIn(&fe, "", req.ProtoReflect())
	return fe.err()
}

// checkTextIn checks m's fields, naming them from prefix. A field's path is
// built only when it has something to report (path), so a fit request, the
// common case, costs the walk alone.
func checkTextIn(fe *fieldErrors, prefix string, m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				checkTextValue(fe, fd, l.Get(i), func() string { return fmt.Sprintf("%s%s[%d]", prefix, fd.Name(), i) })
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				key := k.String()
				if fd.MapKey().Kind() == protoreflect.StringKind {
					if d := textProblem(key); d != "" {
						fe.add(prefix+string(fd.Name()), "keys "+d)
						return true
					}
				}
				checkTextValue(fe, fd.MapValue(), mv, func() string { return fmt.Sprintf("%s%s[%q]", prefix, fd.Name(), key) })
				return true
			})
		default:
			checkTextValue(fe, fd, v, func() string { return prefix + string(fd.Name()) })
		}
		return true
	})
}

func checkTextValue(fe *fieldErrors, fd protoreflect.FieldDescriptor, v protoreflect.Value, path func() string) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if d := textProblem(v.String()); d != "" {
			fe.add(path(), d)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		checkTextIn(fe, path()+".", v.Message())
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
