package condition

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// MaxLength is the longest source, in bytes, that Compile accepts.
const MaxLength = 4096

// maxNodes caps the syntax tree. MaxLength already bounds it loosely; this keeps the
// checker and optimizer cheap and turns absurd generated expressions away with a clear
// message. Hand-written conditions use a few dozen nodes.
const maxNodes = 1000

// maxRange is the most elements a range literal (1..10) may have.
const maxRange = 1000

// builtins are the functions a condition may call. Left out, so that a value cannot
// grow beyond a constant times the event and the source: builtins that multiply sizes
// (repeat, replace, join, toJSON, toBase64), that keep a computed value per element
// (map, reduce, groupBy, sortBy), and those that read the clock or the time zone
// files (now, date, duration, timezone), which would also make matching depend on
// when it runs.
func builtins() []string {
	return []string{
		"all", "none", "any", "one", "filter", "find", "findIndex", "findLast", "findLastIndex",
		"count", "sum", "len", "abs", "ceil", "floor", "round", "int", "float", "string",
		"trim", "trimPrefix", "trimSuffix", "upper", "lower", "split", "splitAfter",
		"indexOf", "lastIndexOf", "hasPrefix", "hasSuffix", "max", "min", "mean", "median",
		"first", "last", "get", "take", "keys", "values", "reverse", "uniq", "sort",
		"concat", "flatten",
	}
}

// memoryBudget is expr's per-run allocation budget (elements of ranges, arrays, maps
// and sorted results); exceeding it is a runtime error. The language rules below keep
// conditions far from it: it is a backstop.
const memoryBudget = 1_000_000

// Env is what an expression sees: data, changes, context (decoded JSON objects,
// map[string]any), the strings type, resource, trigger, resource_id and tenant, and
// related ([]any of map[string]any{"resource": ..., "id": ...}). A variable that is
// absent from the map is nil.
type Env = map[string]any

// typeEnv declares the variables and their static types for the checker. It is built
// per call rather than kept in a package variable so that no caller can mutate it.
func typeEnv() Env {
	return Env{
		"data":        map[string]any{},
		"changes":     map[string]any{},
		"context":     map[string]any{},
		"type":        "",
		"resource":    "",
		"trigger":     "",
		"resource_id": "",
		"tenant":      "",
		"related":     []any{},
	}
}

// Program is a compiled condition. It is safe for concurrent use.
type Program struct {
	source  string
	program *vm.Program
	// vms recycles expr's virtual machines (stack and scopes) across Match calls;
	// expr.Run would allocate a fresh one each time.
	vms sync.Pool
}

// Error is a compile error in a condition, or a runtime error of Match. Line and
// Column are 1-based; Column counts characters (runes), not bytes.
type Error struct {
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// Compile parses and type-checks src. A bad expression yields an *Error.
func Compile(src string) (p *Program, err error) {
	if len(src) > MaxLength {
		line, col := position(src, MaxLength)
		return nil, &Error{Line: line, Column: col,
			Message: fmt.Sprintf("expression is %d bytes long, the limit is %d", len(src), MaxLength)}
	}
	defer func() {
		// expr is fuzzed upstream, but a condition comes from a tenant over the API:
		// a bug there must reject one webhook, not crash the process.
		if r := recover(); r != nil {
			p, err = nil, &Error{Line: 1, Column: 1, Message: fmt.Sprintf("internal error: %v", r)}
		}
	}()

	pv := &patcher{src: src}
	opts := []expr.Option{
		expr.Env(typeEnv()),
		expr.AsBool(),
		expr.MaxNodes(maxNodes),
		expr.Patch(pv),
		expr.DisableAllBuiltins(),
	}
	for _, name := range builtins() {
		opts = append(opts, expr.EnableBuiltin(name))
	}
	program, err := expr.Compile(src, opts...)
	if err == nil && pv.err != nil {
		return nil, pv.err
	}
	if err == nil {
		// AsBool lets an expression of unknown static type through (data.flag could
		// hold anything); a condition must be boolean by construction instead.
		if t := program.Node().Type(); t == nil || t.Kind() != reflect.Bool {
			err = fmt.Errorf("expected bool, but got a value of unknown type; compare it, e.g. %s == true",
				shorten(src))
		}
	}
	if err != nil {
		return nil, toError(src, err)
	}
	return &Program{source: src, program: program}, nil
}

// Source returns the expression as it was compiled.
func (p *Program) Source() string { return p.source }

// Match runs the program against env. A runtime error (wrong type, index out of
// range, memory budget exceeded) returns false and an *Error; Match never panics.
func (p *Program) Match(env Env) (ok bool, err error) {
	m, _ := p.vms.Get().(*vm.VM)
	if m == nil {
		m = &vm.VM{MemoryBudget: memoryBudget}
	}
	defer func() {
		// vm.Run recovers its own panics; this guards the type assertion and anything
		// expr adds later, as promised above.
		if r := recover(); r != nil {
			ok, err = false, &Error{Line: 1, Column: 1, Message: fmt.Sprintf("internal error: %v", r)}
			return // a VM that panicked outside its own recovery is not reused
		}
		// Drop references to the event so a pooled VM does not keep it alive.
		clear(m.Stack)
		clear(m.Variables)
		p.vms.Put(m)
	}()

	out, err := m.Run(p.program, env)
	if err != nil {
		return false, toError(p.source, err)
	}
	b, isBool := out.(bool)
	if !isBool {
		return false, &Error{Line: 1, Column: 1, Message: fmt.Sprintf("expected bool, but got %T", out)}
	}
	return b, nil
}

// toError converts expr's errors to *Error. expr's file.Error carries a 1-based line
// and a 0-based column; its other errors (such as AsBool's) have no position and are
// reported at the start of the expression.
func toError(src string, err error) *Error {
	var fe *file.Error
	if errors.As(err, &fe) {
		// Bind again: errors from the compiler stage are not always bound.
		fe = fe.Bind(file.NewSource(src))
		return &Error{Line: fe.Line, Column: fe.Column + 1, Message: fe.Message}
	}
	line, col := start(src)
	return &Error{Line: line, Column: col, Message: err.Error()}
}

// position returns the 1-based line and column of the character holding byte offset.
func position(src string, offset int) (line, col int) {
	line, col = 1, 1
	for i, r := range src {
		if i >= offset {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// start returns the position of the first non-space character, where an error about
// the expression as a whole points.
func start(src string) (line, col int) {
	for i, r := range src {
		if r != ' ' && r != '\t' && r != '\n' && r != '\r' {
			return position(src, i)
		}
	}
	return position(src, len(src))
}

// shorten keeps an error message readable when it quotes a long expression.
func shorten(src string) string {
	const limit = 40
	src = strings.Join(strings.Fields(src), " ")
	if utf8.RuneCountInString(src) <= limit {
		return src
	}
	return string([]rune(src)[:limit]) + "..."
}

// patcher rewrites and vets the syntax tree before expr type-checks it:
//   - every member access becomes nil-safe (a.b.c behaves as a?.b?.c), so a missing
//     intermediate key reads as nil instead of failing at run time;
//   - $env is refused, so the variables are exactly those of Env;
//   - builtins outside builtins() are refused;
//   - let is refused: a variable used twice can double a string per declaration;
//   - a range must have integer literal bounds and at most maxRange elements;
//   - a collection builtin nested in another one's predicate must iterate over the
//     current element (#, #.x, .x), which keeps the work linear in the event's size.
type patcher struct {
	err *Error
	src string
}

func (v *patcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		if n.Optional || n.Method {
			return
		}
		n.Optional = true
		ast.Patch(node, &ast.ChainNode{Node: n})
	case *ast.IdentifierNode:
		if n.Value == "$env" {
			v.fail(n, "unknown name $env")
		}
	case *ast.VariableDeclaratorNode:
		v.fail(n, "let is not supported in conditions")
	case *ast.BinaryNode:
		if n.Operator == ".." && !smallRange(n) {
			v.fail(n, "a range must have integer literal bounds and at most %d elements", maxRange)
		}
	case *ast.BuiltinNode:
		// expr parses its predicate builtins (map, reduce, ...) even when disabled.
		if !slices.Contains(builtins(), n.Name) {
			v.fail(n, "%s() is not available in conditions", n.Name)
		}
		for _, arg := range n.Arguments {
			if pred, ok := arg.(*ast.PredicateNode); ok {
				ast.Walk(&pred.Node, &nestedLoops{outer: n.Name, report: v.fail})
			}
		}
	}
}

func (v *patcher) fail(n ast.Node, format string, args ...any) {
	if v.err == nil {
		v.err = toError(v.src, &file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)})
	}
}

// nestedLoops checks the collection builtins found in the predicate of outer.
type nestedLoops struct {
	outer  string
	report func(n ast.Node, format string, args ...any)
}

func (l *nestedLoops) Visit(node *ast.Node) {
	n, ok := (*node).(*ast.BuiltinNode)
	if !ok || !hasPredicate(n) || len(n.Arguments) == 0 || overElement(n.Arguments[0]) {
		return
	}
	l.report(n, "%s() inside the predicate of %s() must iterate over the current element (#, #.field or .field)",
		n.Name, l.outer)
}

func smallRange(n *ast.BinaryNode) bool {
	lo, ok1 := intLiteral(n.Left)
	hi, ok2 := intLiteral(n.Right)
	// Compare as unsigned so that extreme bounds cannot overflow into a small size.
	return ok1 && ok2 && (hi < lo || uint64(hi)-uint64(lo) < maxRange)
}

func intLiteral(n ast.Node) (int, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.UnaryNode:
		if v, ok := intLiteral(n.Node); ok && n.Operator == "-" {
			return -v, true
		}
	}
	return 0, false
}

func hasPredicate(n *ast.BuiltinNode) bool {
	for _, arg := range n.Arguments {
		if _, ok := arg.(*ast.PredicateNode); ok {
			return true
		}
	}
	return false
}

// overElement reports whether collection is the current element # or reached from it
// through member, index or slice access.
func overElement(collection ast.Node) bool {
	for {
		switch n := collection.(type) {
		case *ast.PointerNode:
			return n.Name == ""
		case *ast.ChainNode:
			collection = n.Node
		case *ast.MemberNode:
			collection = n.Node
		case *ast.SliceNode:
			collection = n.Node
		default:
			return false
		}
	}
}
