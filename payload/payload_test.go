package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const ticket = `{"id":"9c1e","priority":"High","status":"open","customer":{"email":"a@b.c","name":"Ann","address":{"city":"Oslo"}},"tags":["x"],"assignee":null}`

func TestData(t *testing.T) {
	tests := []struct {
		name    string
		trigger string
		data    string
		changes string
		opt     Options
		want    string // exact bytes; "" means nil
		wantErr string // part of the error text
	}{
		{
			name: "create with all fields sends data unchanged", trigger: "create",
			data: ticket, opt: Options{IncludeAllFields: true}, want: ticket,
		},
		{
			name: "create ignores include_all_fields false", trigger: "create",
			data: ticket, opt: Options{IncludeAllFields: false}, want: ticket,
		},
		{
			name: "update with include_all_fields sends all", trigger: "update",
			data: ticket, changes: `{"priority":{"old":"Low","new":"High"}}`,
			opt: Options{IncludeAllFields: true}, want: ticket,
		},
		{
			name: "create selects top-level fields in sorted order", trigger: "create",
			data: ticket, opt: Options{Fields: []string{"status", "priority"}, IncludeAllFields: true},
			want: `{"priority":"High","status":"open"}`,
		},
		{
			name: "create selects a nested field into a nested object", trigger: "create",
			data: ticket, opt: Options{Fields: []string{"customer.email", "id"}, IncludeAllFields: true},
			want: `{"customer":{"email":"a@b.c"},"id":"9c1e"}`,
		},
		{
			name: "deep nested paths share their parents", trigger: "create",
			data: ticket, opt: Options{Fields: []string{"customer.address.city", "customer.name"}, IncludeAllFields: true},
			want: `{"customer":{"address":{"city":"Oslo"},"name":"Ann"}}`,
		},
		{
			name: "a path and a path under it: the shorter wins", trigger: "create",
			data: ticket, opt: Options{Fields: []string{"customer.email", "customer"}, IncludeAllFields: true},
			want: `{"customer":{"email":"a@b.c","name":"Ann","address":{"city":"Oslo"}}}`,
		},
		{
			name: "missing paths are left out", trigger: "create",
			data: ticket, opt: Options{Fields: []string{"nope", "customer.phone", "status.x", "tags.0", "priority"}, IncludeAllFields: true},
			want: `{"priority":"High"}`,
		},
		{
			name: "only missing paths give an empty object", trigger: "create",
			data: ticket, opt: Options{Fields: []string{"nope"}, IncludeAllFields: true},
			want: `{}`,
		},
		{
			name: "null values are present, not missing", trigger: "create",
			data: ticket, opt: Options{Fields: []string{"assignee"}, IncludeAllFields: true},
			want: `{"assignee":null}`,
		},
		{
			name: "update changed-only sends unchanged fields as null", trigger: "update",
			data:    `{"b":2,"a":1,"c":{"d":3}}`,
			changes: `{"a":{"old":0,"new":1}}`,
			want:    `{"a":1,"b":null,"c":null}`,
		},
		{
			name: "update changed-only: a changed path below a top-level field changes it", trigger: "update",
			data:    `{"a":1,"c":{"d":3,"e":4}}`,
			changes: `{"c.d":{"old":0,"new":3}}`,
			want:    `{"a":null,"c":{"d":3,"e":4}}`,
		},
		{
			name: "update changed-only with fields", trigger: "update",
			data: ticket, changes: `{"priority":{"old":"Low","new":"High"},"tags":{"old":[],"new":["x"]}}`,
			opt:  Options{Fields: []string{"priority", "status", "customer.email"}},
			want: `{"customer":{"email":null},"priority":"High","status":null}`,
		},
		{
			name: "update changed-only: nested path changed through its parent", trigger: "update",
			data: ticket, changes: `{"customer":{"old":{},"new":{}}}`,
			opt:  Options{Fields: []string{"customer.email", "status"}},
			want: `{"customer":{"email":"a@b.c"},"status":null}`,
		},
		{
			name: "update changed-only: nested path changed by its own key", trigger: "update",
			data: ticket, changes: `{"customer.email":{"old":"x","new":"a@b.c"}}`,
			opt:  Options{Fields: []string{"customer.email", "customer.name"}},
			want: `{"customer":{"email":"a@b.c","name":null}}`,
		},
		{
			name: "update changed-only without changes sends all null", trigger: "update",
			data: `{"a":1,"b":"x"}`, want: `{"a":null,"b":null}`,
		},
		{
			name: "update changed-only with malformed changes sends all null", trigger: "update",
			data: `{"a":1}`, changes: `[1,2`, want: `{"a":null}`,
		},
		{
			name: "other triggers send all fields", trigger: "paid",
			data: `{"a":1}`, changes: `{}`, want: `{"a":1}`,
		},
		{
			name: "delete sends no data", trigger: "delete",
			data: ticket, opt: Options{Fields: []string{"priority"}}, want: "",
		},
		{
			name: "delete sends no data even with invalid data", trigger: "delete",
			data: `nope`, opt: Options{Fields: []string{"priority"}}, want: "",
		},
		{
			name: "non-object data with fields is an error", trigger: "create",
			data: `[1,2,3]`, opt: Options{Fields: []string{"a"}}, wantErr: "got an array",
		},
		{
			name: "invalid data with changed-only is an error", trigger: "update",
			data: `{"a":`, wantErr: "got invalid JSON",
		},
		{
			name: "non-object data without shaping passes through", trigger: "create",
			data: `"just a string"`, opt: Options{IncludeAllFields: true}, want: `"just a string"`,
		},
		{
			name: "null data with fields passes through", trigger: "create",
			data: `null`, opt: Options{Fields: []string{"a"}}, want: `null`,
		},
		{
			name: "absent data with fields stays absent", trigger: "update",
			data: ``, opt: Options{Fields: []string{"a"}}, want: "",
		},
		{
			name: "big numbers keep their precision and spelling", trigger: "create",
			data: `{"n":12345678901234567890,"f":1.10000000000000000000001,"e":1E+400,"s":"x"}`,
			opt:  Options{Fields: []string{"n", "f", "e"}, IncludeAllFields: true},
			want: `{"e":1E+400,"f":1.10000000000000000000001,"n":12345678901234567890}`,
		},
		{
			name: "keys needing escapes are written as valid JSON", trigger: "update",
			data: `{"q\"\\\n\u0001<>":1, "é":2}`, changes: `{"é":{}}`,
			want: `{"q\"\\\n\u0001<>":null,"é":2}`,
		},
		{
			name: "whitespace in values is kept, around data is dropped", trigger: "create",
			data: " \n{\"a\" : [1, 2] , \"b\":{ \"c\" : 3 }}\n", opt: Options{Fields: []string{"a", "b.c"}},
			want: `{"a":[1, 2],"b":{"c":3}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Data(tt.trigger, raw(tt.data), raw(tt.changes), tt.opt)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNotObject) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrNotObject with %q (data %s)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.want == "" {
				if got != nil {
					t.Fatalf("got %s, want nil", got)
				}
				return
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("output is not valid JSON: %s", got)
			}
		})
	}
}

// raw turns "" into nil, as an absent field decodes.
func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

func TestDataUnchangedReturnsSameBytes(t *testing.T) {
	data := json.RawMessage(ticket)
	for _, trigger := range []string{"create", "update", "scan"} {
		got, err := Data(trigger, data, nil, Options{IncludeAllFields: true})
		if err != nil || len(got) != len(data) || &got[0] != &data[0] {
			t.Fatalf("%s: data was copied or changed: %s, %v", trigger, got, err)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = Data("update", data, nil, Options{IncludeAllFields: true})
	})
	if allocs != 0 {
		t.Fatalf("unchanged data allocates %v times per call, want 0", allocs)
	}
}

func TestDataDoesNotAliasShapedOutput(t *testing.T) {
	data := []byte(`{"a":"x","b":1}`)
	got, err := Data("create", data, nil, Options{Fields: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	copy(data, bytes.Repeat([]byte{'#'}, len(data)))
	if string(got) != `{"a":"x"}` {
		t.Fatalf("shaped output shares memory with data: %s", got)
	}
}

func TestValidateFields(t *testing.T) {
	many := make([]string, MaxFields+1)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	tests := []struct {
		name      string
		fields    []string
		wantIndex int // -2: valid
		wantText  string
	}{
		{name: "one top-level path", fields: []string{"priority"}, wantIndex: -2},
		{name: "nested and overlapping paths", fields: []string{"customer", "customer.email", "a.b.c"}, wantIndex: -2},
		{name: "the maximum number of paths", fields: many[:MaxFields], wantIndex: -2},
		{name: "a path of exactly the maximum length", fields: []string{strings.Repeat("a", MaxPathBytes)}, wantIndex: -2},
		{name: "no paths", fields: nil, wantIndex: -1, wantText: "1 to 100"},
		{name: "too many paths", fields: many, wantIndex: -1, wantText: "got 101"},
		{name: "empty path", fields: []string{"a", ""}, wantIndex: 1, wantText: "is empty"},
		{name: "leading dot", fields: []string{".a"}, wantIndex: 0, wantText: "empty segment"},
		{name: "trailing dot", fields: []string{"a."}, wantIndex: 0, wantText: "empty segment"},
		{name: "double dot", fields: []string{"a", "b", "a..b"}, wantIndex: 2, wantText: `"a..b"`},
		{name: "path too long", fields: []string{strings.Repeat("a", MaxPathBytes+1)}, wantIndex: 0, wantText: "longer than 200"},
		{name: "duplicate names the second", fields: []string{"a.b", "c", "a.b"}, wantIndex: 2, wantText: "listed twice"},
		{name: "segment padded with spaces", fields: []string{"customer. email"}, wantIndex: 0, wantText: "padded"},
		{name: "invalid UTF-8", fields: []string{"a\xff"}, wantIndex: 0, wantText: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateFields(tt.fields)
			if tt.wantIndex == -2 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *PathError", err)
			}
			if pe.Index != tt.wantIndex || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("err = %q (index %d), want index %d and %q", err, pe.Index, tt.wantIndex, tt.wantText)
			}
			if pe.Index >= 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("fields[%d]: ", pe.Index)) {
				t.Fatalf("error %q does not name its index", err)
			}
		})
	}
}

func FuzzData(f *testing.F) {
	f.Add("create", []byte(ticket), []byte(nil), "customer.email\npriority", true)
	f.Add("update", []byte(ticket), []byte(`{"priority":{"old":1,"new":2}}`), "", false)
	f.Add("update", []byte(ticket), []byte(`{"customer.email":{}}`), "customer.email\ncustomer.name\nstatus", false)
	f.Add("delete", []byte(`[]`), []byte(`x`), "a", false)
	f.Add("create", []byte(`{"a":{"b":{"c":12345678901234567890}}}`), []byte(nil), "a.b.c\na\n\n..", true)
	f.Add("update", []byte(`{"a":1,"a":2,"\u0000":3}`), []byte(`{"a":{},"":1}`), "", false)
	f.Add("create", []byte(`"x"`), []byte(nil), "a", true)
	f.Add("create", []byte(`{"a":"}{,","b":[{"c":"]"}],"c":{"d":"\"}","e":{"f":1}},"c":{"d":2}}`), []byte(nil), "c.d\nb\nc.e.f", true)
	f.Add("update", []byte(` {"a\u002eb":{"c":true},"a":{"b":{"c":-0.5e-7}}} `), []byte(`{"a.b.c":{}}`), "a.b.c\na\u002eb", false)
	f.Fuzz(func(t *testing.T, trigger string, data, changes []byte, fields string, includeAll bool) {
		var opt Options
		if fields != "" {
			opt.Fields = strings.Split(fields, "\n")
		}
		opt.IncludeAllFields = includeAll
		out, err := Data(trigger, data, changes, opt)
		again, err2 := Data(trigger, data, changes, opt)
		if !bytes.Equal(out, again) || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %s / %s", out, again)
		}
		shaping := len(opt.Fields) > 0 || (trigger == TriggerUpdate && !includeAll)
		trimmed := trimSpace(data)
		switch {
		case trigger == TriggerDelete:
			if out != nil || err != nil {
				t.Fatalf("delete gave %s, %v", out, err)
			}
		case err != nil:
			if !errors.Is(err, ErrNotObject) || !shaping || out != nil {
				t.Fatalf("unexpected error %v (shaping %v, out %s)", err, shaping, out)
			}
			if json.Valid(trimmed) && trimmed[0] == '{' {
				t.Fatalf("error for a valid object: %v", err)
			}
		case !shaping || len(trimmed) == 0 || string(trimmed) == "null":
			if !bytes.Equal(out, data) {
				t.Fatalf("pass-through changed data: %q -> %q", data, out)
			}
		default:
			checkShaped(t, data, out)
			want := reference(t, data, changes, opt, trigger == TriggerUpdate && !includeAll)
			if got := decodeAny(t, out); !reflect.DeepEqual(got, want) {
				t.Fatalf("data %q changes %q fields %q:\n got  %#v\n want %#v", data, changes, opt.Fields, got, want)
			}
		}
	})
}

// checkShaped asserts that out is a JSON object whose top-level keys are
// sorted keys of data, each holding null, data's own value or, for a nested
// selection, an object.
func checkShaped(t *testing.T, data, out []byte) {
	t.Helper()
	var in, got map[string]json.RawMessage
	if err := json.Unmarshal(data, &in); err != nil || in == nil {
		t.Fatalf("shaped data that is not an object without error: %q", data)
	}
	if err := json.Unmarshal(out, &got); err != nil || got == nil {
		t.Fatalf("output is not a JSON object: %q (%v)", out, err)
	}
	keys := topLevelKeys(t, out)
	if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) {
		t.Fatalf("output keys are not sorted and unique: %q", keys)
	}
	for k, v := range got {
		orig, ok := in[k]
		switch {
		case !ok:
			t.Fatalf("output key %q is not in data", k)
		case string(v) == "null" || bytes.Equal(v, orig) || v[0] == '{':
		default:
			t.Fatalf("output %q = %s, data has %s", k, v, orig)
		}
	}
}

// topLevelKeys lists the keys of a JSON object in the order they appear.
func topLevelKeys(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// reference is a slow, obviously correct shaping built on encoding/json, to
// compare Data against: it follows each path on its own.
func reference(t *testing.T, data, changes []byte, opt Options, changedOnly bool) map[string]any {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("reference: %v", err)
	}
	var changed []string
	var ch map[string]json.RawMessage
	if c := trimSpace(changes); len(c) > 0 && c[0] == '{' && json.Unmarshal(c, &ch) == nil {
		for k := range ch {
			changed = append(changed, k)
		}
	}
	isChanged := func(p string) bool {
		for _, c := range changed {
			if c == p || strings.HasPrefix(p, c+".") || strings.HasPrefix(c, p+".") {
				return true
			}
		}
		return false
	}
	var paths [][]string // each key is one segment when nothing is selected
	for k := range top {
		if len(opt.Fields) == 0 {
			paths = append(paths, []string{k})
		}
	}
	for _, f := range opt.Fields {
		if !hasShorter(f, opt.Fields) {
			paths = append(paths, strings.Split(f, "."))
		}
	}
	out := map[string]any{}
	for _, segs := range paths {
		v, ok := lookupPath(top, segs)
		if !ok {
			continue
		}
		dst := out
		for _, seg := range segs[:len(segs)-1] {
			sub, _ := dst[seg].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				dst[seg] = sub
			}
			dst = sub
		}
		leaf := segs[len(segs)-1]
		if changedOnly && !isChanged(strings.Join(segs, ".")) {
			dst[leaf] = nil
		} else {
			dst[leaf] = decodeAny(t, v)
		}
	}
	return out
}

// lookupPath follows segs through nested objects.
func lookupPath(obj map[string]json.RawMessage, segs []string) (json.RawMessage, bool) {
	for i, seg := range segs {
		v, ok := obj[seg]
		if !ok || i == len(segs)-1 {
			return v, ok
		}
		obj = nil
		if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &obj) != nil {
			return nil, false
		}
	}
	return nil, false
}

// hasShorter reports whether fields names a path above f.
func hasShorter(f string, fields []string) bool {
	for _, g := range fields {
		if strings.HasPrefix(f, g+".") {
			return true
		}
	}
	return false
}

func decodeAny(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	return v
}

var sink json.RawMessage

func BenchmarkDataUnchanged(b *testing.B) {
	data := json.RawMessage(ticket)
	opt := Options{IncludeAllFields: true}
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = Data("update", data, nil, opt)
	}
}

func BenchmarkDataFields(b *testing.B) {
	data := json.RawMessage(benchTicket())
	opt := Options{Fields: []string{"priority", "status", "customer.email"}, IncludeAllFields: true}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = Data("create", data, nil, opt)
	}
}

func BenchmarkDataChangedOnly(b *testing.B) {
	data := json.RawMessage(benchTicket())
	changes := json.RawMessage(`{"priority":{"old":"Low","new":"High"},"customer.email":{"old":"x","new":"y"}}`)
	opt := Options{}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = Data("update", data, changes, opt)
	}
}

// benchTicket is a ticket of about 1 KiB with 20 top-level fields.
func benchTicket() string {
	var sb strings.Builder
	sb.WriteString(`{"priority":"High","status":"open","customer":{"email":"a@b.c","name":"Ann","address":{"city":"Oslo","zip":"0150"}}`)
	for i := range 17 {
		fmt.Fprintf(&sb, `,"field%02d":{"text":"lorem ipsum dolor sit amet","n":%d}`, i, 12345678901234567+i)
	}
	sb.WriteString(`}`)
	return sb.String()
}
