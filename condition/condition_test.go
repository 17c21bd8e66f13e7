package condition

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// event decodes a JSON event the way the pipeline does, so numbers are float64.
func event(t testing.TB, js string) Env {
	t.Helper()
	var env Env
	if err := json.Unmarshal([]byte(js), &env); err != nil {
		t.Fatalf("bad test event %s: %v", js, err)
	}
	return env
}

func mustCompile(t testing.TB, src string) *Program {
	t.Helper()
	p, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return p
}

const seed = `data.priority == "High" && data.assignee == nil`

func TestMatch(t *testing.T) {
	ticket := `{"type": "ticket.updated", "resource": "ticket", "trigger": "update",
		"resource_id": "9c1e", "tenant": "d0a3",
		"related": [{"resource": "event", "id": "e42"}, {"resource": "shop", "id": "s1"}],
		"data": {"priority": "High", "tags": ["vip", "eu"], "amount": 150, "paid": true,
			"items": [{"sku": "a", "tags": ["x"]}, {"sku": "b", "tags": ["y", "z"]}, {"sku": "c"}],
			"customer": {"email": "ann@example.com"}},
		"changes": {"status": {"old": "open", "new": "closed"}},
		"context": {"actor": "admin@acme.com"}}`

	tests := []struct {
		name string
		src  string
		env  string
		want bool
	}{
		{"seed matches high priority without assignee", seed, `{"data": {"priority": "High"}}`, true},
		{"seed matches high priority with null assignee", seed, `{"data": {"priority": "High", "assignee": null}}`, true},
		{"seed rejects an assigned ticket", seed, `{"data": {"priority": "High", "assignee": "bob"}}`, false},
		{"seed rejects low priority", seed, `{"data": {"priority": "Low"}}`, false},
		{"seed rejects an event without data", seed, `{}`, false},
		{"in finds a tag", `"vip" in data.tags`, ticket, true},
		{"in misses a tag", `"us" in data.tags`, ticket, false},
		{"not in", `"us" not in data.tags`, ticket, true},
		{"in on object keys", `"priority" in data`, ticket, true},
		{"endsWith on the actor", `context.actor endsWith "@acme.com"`, ticket, true},
		{"endsWith rejects another domain", `context.actor endsWith "@evil.com"`, ticket, false},
		{"startsWith on type", `type startsWith "ticket."`, ticket, true},
		{"contains", `data.customer.email contains "@example"`, ticket, true},
		{"matches a regular expression", `data.customer.email matches "^[a-z]+@example\\.com$"`, ticket, true},
		{"changes new value", `changes.status.new == "closed"`, ticket, true},
		{"changes old value", `changes.status.old == "closed"`, ticket, false},
		{"changes without the field is no match", `changes.status.new == "closed"`, `{"changes": {"priority": {"old": "Low", "new": "High"}}}`, false},
		{"changes absent on a create", `changes.status.new == "closed"`, `{"data": {}}`, false},
		{"explicit optional chaining", `changes?.status?.new == nil`, `{}`, true},
		{"deep missing path is nil", `data.a.b.c.d == nil`, ticket, true},
		{"number greater", `data.amount > 100`, ticket, true},
		{"number not greater", `data.amount > 200`, ticket, false},
		{"number equals integer literal", `data.amount == 150`, ticket, true},
		{"number arithmetic", `data.amount * 2 >= 300.0`, ticket, true},
		{"boolean field compared", `data.paid == true`, ticket, true},
		{"boolean field negated", `!data.paid`, ticket, false},
		{"boolean field in logic", `data.paid && data.amount > 100`, ticket, true},
		{"len of an array", `len(data.items) > 2`, ticket, true},
		{"len of an array too short", `len(data.tags) > 2`, ticket, false},
		{"related any matches", `any(related, .resource == "event")`, ticket, true},
		{"related any misses", `any(related, .resource == "product")`, ticket, false},
		{"related id", `any(related, .resource == "event" && .id == "e42")`, ticket, true},
		{"related empty", `any(related, .resource == "event")`, `{"related": []}`, false},
		{"related absent", `related == nil`, `{}`, true},
		{"nested predicate over the current element", `any(data.items, any(.tags, # == "z"))`, ticket, true},
		{"nested predicate over a missing element field", `any(data.items, .sku == "c" && .tags == nil)`, ticket, true},
		{"predicate may read outer variables", `any(data.items, .sku == "a" && resource == "ticket")`, ticket, true},
		{"or", `data.priority == "Low" || trigger == "update"`, ticket, true},
		{"word operators", `not (data.priority == "Low") and tenant == "d0a3"`, ticket, true},
		{"ternary", `(data.amount > 100 ? "big" : "small") == "big"`, ticket, true},
		{"nil coalescing", `(data.missing ?? "x") == "x"`, ticket, true},
		{"in a range", `data.amount in 100..200`, ticket, true},
		{"not in a negative range", `data.amount not in -5..5`, ticket, true},
		{"predicate over a range", `one(0..9, # * 10 == 50)`, ticket, true},
		{"count with a predicate", `count(data.items, .tags != nil) == 2`, ticket, true},
		{"sum of a field", `sum(data.items, len(.tags ?? [])) == 3`, ticket, true},
		{"filter and first", `first(filter(data.items, .sku > "a")).sku == "b"`, ticket, true},
		{"keys", `"status" in keys(changes)`, ticket, true},
		{"string of a number", `string(data.amount) == "150"`, ticket, true},
		{"lower", `lower(data.priority) == "high"`, ticket, true},
		{"index", `data.items[1].sku == "b"`, ticket, true},
		{"resource id and tenant", `resource_id == "9c1e" && tenant == "d0a3"`, ticket, true},
		{"constant true", `true`, `{}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.src)
			got, err := p.Match(event(t, tt.env))
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tt.want {
				t.Errorf("Match(%s) = %v, want %v", tt.env, got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	long := `data.priority == "` + strings.Repeat("x", MaxLength) + `"`
	tests := []struct {
		name string
		src  string
		want Error
	}{
		{"syntax error: missing operand", `data.priority ==`, Error{1, 16, "unexpected token EOF"}},
		{"syntax error: unclosed parenthesis", "(data.priority == \"High\"\n  && data.assignee == nil",
			Error{2, 25, "unexpected token EOF"}},
		{"syntax error: single equals", `data.priority = "High"`, Error{1, 15, `unexpected token Operator("=")`}},
		{"unknown variable", `prioritty == "High"`, Error{1, 1, "unknown name prioritty"}},
		{"unknown variable on a later line", "data.priority == \"High\" &&\n  assigne == nil",
			Error{2, 3, "unknown name assigne"}},
		{"env escape is refused", `$env.data == nil`, Error{1, 1, "unknown name $env"}},
		{"non-boolean field", `data.priority`, Error{1, 1,
			"expected bool, but got a value of unknown type; compare it, e.g. data.priority == true"}},
		{"non-boolean field after spaces", "  \n data.priority", Error{2, 2,
			"expected bool, but got a value of unknown type; compare it, e.g. data.priority == true"}},
		{"non-boolean string", `type`, Error{1, 1, "expected bool, but got string"}},
		{"non-boolean number", `data.amount + 1`, Error{1, 1, "expected bool, but got a value of unknown type; compare it, e.g. data.amount + 1 == true"}},
		{"non-boolean integer literal", `42`, Error{1, 1, "expected bool, but got int"}},
		{"too long", long, Error{1, MaxLength + 1, "expression is 4115 bytes long, the limit is 4096"}},
		{"too long counts bytes, reports characters", "\"é\" == \"" + strings.Repeat("x", MaxLength) + `"`,
			Error{1, MaxLength, "expression is 4106 bytes long, the limit is 4096"}},
		{"nested predicate over an outer collection", `any(data.items, any(data.items, true))`,
			Error{1, 17, "any() inside the predicate of any() must iterate over the current element (#, #.field or .field)"}},
		{"nested predicate over a range", `all(data.items, 1 in filter(1..1000, # > 5))`,
			Error{1, 22, "filter() inside the predicate of all() must iterate over the current element (#, #.field or .field)"}},
		{"let is refused", `let p = data.priority; p == "High"`, Error{1, 5, "let is not supported in conditions"}},
		{"map is refused", `len(map(data.items, .sku)) > 1`, Error{1, 5, "map() is not available in conditions"}},
		{"reduce is refused", `reduce(data.items, #acc + 1, 0) > 1`, Error{1, 1, "reduce() is not available in conditions"}},
		{"repeat is refused", `repeat("x", 3) == "xxx"`, Error{1, 1, "unknown name repeat"}},
		{"the clock is refused", `now() != nil`, Error{1, 1, "unknown name now"}},
		{"toJSON is refused", `toJSON(data) != ""`, Error{1, 1, "unknown name toJSON"}},
		{"range too large", `any(0..1000, # == 7)`, Error{1, 6, "a range must have integer literal bounds and at most 1000 elements"}},
		{"range with a variable bound", `data.n in 1..data.max`, Error{1, 12, "a range must have integer literal bounds and at most 1000 elements"}},
		{"range with extreme bounds", `-9223372036854775807..9223372036854775807 == nil`,
			Error{1, 21, "a range must have integer literal bounds and at most 1000 elements"}},
		{"too many nodes", strings.TrimSuffix(strings.Repeat("1 == 1 && ", 400), " && "),
			Error{1, 2508, "compilation failed: expression exceeds maximum allowed nodes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.src)
			if err == nil {
				t.Fatalf("Compile(%q) = %v, want error %v", tt.src, p.Source(), tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Compile error is %T (%v), want *Error", err, err)
			}
			if *ce != tt.want {
				t.Errorf("Compile error = %#v\nwant             %#v", *ce, tt.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	_, err := Compile(`prioritty == "High"`)
	if err == nil || err.Error() != "line 1, column 1: unknown name prioritty" {
		t.Errorf("Compile error = %v, want %q", err, "line 1, column 1: unknown name prioritty")
	}
}

func TestRuntimeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  string
		want Error
	}{
		{"string compared with a number", `data.amount > 5`, `{"data": {"amount": "5"}}`,
			Error{1, 13, "invalid operation: string > int"}},
		{"missing number compared", `data.amount > 5`, `{"data": {}}`,
			Error{1, 13, "invalid operation: <nil> > int"}},
		{"index out of range", `data.items[3] == 1`, `{"data": {"items": [1, 2]}}`,
			Error{1, 11, "index out of range: 3 (array length is 2)"}},
		{"logic on a non-boolean", `data.flag && true`, `{"data": {"flag": "yes"}}`,
			Error{1, 1, "invalid operation: bool(string)"}},
		{"in on a string", `"x" in data.tags`, `{"data": {"tags": "x"}}`,
			Error{1, 5, "operator \"in\" not defined on string"}},
		{"variable of the wrong type", `type startsWith "ticket."`, `{"type": 7}`,
			Error{1, 6, "interface conversion: interface {} is float64, not string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.src)
			got, err := p.Match(event(t, tt.env))
			if got {
				t.Errorf("Match = true on a runtime error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Match error is %T (%v), want *Error", err, err)
			}
			if *ce != tt.want {
				t.Errorf("Match error = %#v\nwant           %#v", *ce, tt.want)
			}
		})
	}
}

func TestMatchNilEnv(t *testing.T) {
	p := mustCompile(t, seed)
	if got, err := p.Match(nil); got || err != nil {
		t.Errorf("Match(nil) = %v, %v; want false, nil", got, err)
	}
}

func TestSource(t *testing.T) {
	if got := mustCompile(t, seed).Source(); got != seed {
		t.Errorf("Source() = %q, want %q", got, seed)
	}
}

func TestMaxLengthAccepted(t *testing.T) {
	prefix, suffix := `data.note == "`, `"`
	src := prefix + strings.Repeat("x", MaxLength-len(prefix)-len(suffix)) + suffix
	if len(src) != MaxLength {
		t.Fatalf("test source is %d bytes, want %d", len(src), MaxLength)
	}
	mustCompile(t, src)
}

// TestConcurrentMatch runs one program from many goroutines (meaningful under -race)
// and checks that pooled machines do not leak results between events.
func TestConcurrentMatch(t *testing.T) {
	p := mustCompile(t, `any(data.items, # > data.min)`)
	hit := event(t, `{"data": {"items": [1, 2, 3], "min": 2}}`)
	miss := event(t, `{"data": {"items": [1, 2, 3], "min": 9}}`)
	bad := event(t, `{"data": {"items": [1, 2, 3], "min": "2"}}`)
	errs := make(chan string, 8)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				env, want, wantErr := hit, true, false
				switch (g + i) % 3 {
				case 1:
					env, want = miss, false
				case 2:
					env, want, wantErr = bad, false, true
				}
				got, err := p.Match(env)
				if got != want || (err != nil) != wantErr {
					errs <- "unexpected result"
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		seed,
		`"vip" in data.tags`,
		`changes.status.new == "closed"`,
		`context.actor endsWith "@acme.com"`,
		`type startsWith "ticket."`,
		`data.amount > 100`,
		`len(data.items) > 2`,
		`any(related, .resource == "event")`,
		`any(data.items, any(.tags, # == "z"))`,
		`data.items[1:2][0].sku == nil`,
		`(data.amount ?? 0) * 2 > 3 ? true : false`,
		`let x = 1; x == 1`,
		`data.amount in -3..3 || all(0..9, # < 10)`,
		`data.email matches "^a.*b$"`,
		`sum(map(data.items, 1)) > 1`,
		`repeat("x", 10) == "y"`,
		`$env == nil`,
		"(\n",
	} {
		f.Add(s)
	}
	env := event(f, `{"type": "ticket.updated", "resource": "ticket", "trigger": "update",
		"resource_id": "r", "tenant": "t", "related": [{"resource": "event", "id": "e"}],
		"data": {"priority": "High", "amount": 3.5, "tags": ["vip"], "email": "a@b",
			"items": [{"sku": "a", "tags": ["x", "z"]}, 1, "two", null, [3]]},
		"changes": {"status": {"old": "open", "new": "closed"}},
		"context": {"actor": "a@acme.com"}}`)
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Compile(%q) error is %T, want *Error", src, err)
			}
			if strings.HasPrefix(ce.Message, "internal error") {
				t.Fatalf("Compile(%q): %v", src, ce)
			}
			if ce.Line < 1 || ce.Column < 1 {
				t.Fatalf("Compile(%q) error position %d:%d is not 1-based", src, ce.Line, ce.Column)
			}
			return
		}
		got, err := p.Match(env)
		if err != nil && got {
			t.Fatalf("Match(%q) = true with error %v", src, err)
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Match(%q) error is %T, want *Error", src, err)
			}
			if strings.HasPrefix(ce.Message, "internal error") {
				t.Fatalf("Match(%q): %v", src, ce)
			}
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	p := mustCompile(b, seed)
	env := event(b, `{"type": "ticket.updated", "resource": "ticket", "trigger": "update",
		"resource_id": "9c1e", "tenant": "d0a3", "related": [],
		"data": {"priority": "High", "title": "Printer on fire", "status": "open"},
		"changes": {"priority": {"old": "Low", "new": "High"}},
		"context": {"actor": "admin@company.com"}}`)
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Match(env)
		if err != nil || !ok {
			b.Fatalf("Match = %v, %v", ok, err)
		}
	}
}

// TestDocExamples keeps the examples of doc.go (and the README) compiling.
func TestDocExamples(t *testing.T) {
	env := event(t, `{"type": "ticket.created", "trigger": "create",
		"related": [{"resource": "event", "id": "e42"}],
		"data": {"priority": "High", "tags": ["vip"], "amount": 150, "email": "bo@acme.com",
			"items": [{"tags": ["fragile"]}, {}, {}]},
		"changes": {"status": {"new": "closed"}}, "context": {"actor": "x@acme.com"}}`)
	for _, src := range []string{
		`data.priority == "High" && data.assignee == nil`,
		`"vip" in data.tags`,
		`changes.status.new == "closed"`,
		`context.actor endsWith "@acme.com"`,
		`type startsWith "ticket." && trigger != "delete"`,
		`data.amount > 100`,
		`data.amount in 100..200`,
		`len(data.items) > 2`,
		`any(related, .resource == "event" && .id == "e42")`,
		`any(data.items, any(.tags, # == "fragile"))`,
		`data.email matches "^[^@]+@(acme|example)\\.com$"`,
	} {
		t.Run(src, func(t *testing.T) {
			got, err := mustCompile(t, src).Match(env)
			if err != nil || !got {
				t.Errorf("Match = %v, %v; want true", got, err)
			}
		})
	}
}
