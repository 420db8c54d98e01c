package filter

import (
	"fmt"
	"strings"
)

// Condition grammar (keywords are case-insensitive; && and || work too):
//
//	expr    := and { "or" and }
//	and     := primary { "and" primary }
//	primary := "(" expr ")" | "not" primary | ARG op literal | ARG "in" "(" literal { "," literal } ")"
//	op      := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
//	literal := number (decimal, may be negative, or 0x hex) | 0x hex (address, bytes)
//	         | "string" | 'string' | true | false
type token struct {
	kind string // ident, num, hex, str, op, "(", ")", ",", eof
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == ',':
			out = append(out, token{kind: string(c), text: string(c), pos: i})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>' || c == '&' || c == '|':
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '&' && s[j] == '&') || (c == '|' && s[j] == '|')) {
				j++
			}
			op := s[i:j]
			switch op {
			case "=", "==":
				op = "=="
			case "!=", "<", "<=", ">", ">=":
			case "&&":
				out = append(out, token{kind: "ident", text: "and", pos: i})
				i = j
				continue
			case "||":
				out = append(out, token{kind: "ident", text: "or", pos: i})
				i = j
				continue
			default:
				return nil, fmt.Errorf("unexpected %q at position %d", op, i+1)
			}
			out = append(out, token{kind: "op", text: op, pos: i})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string starting at position %d", i+1)
			}
			out = append(out, token{kind: "str", text: b.String(), pos: i})
			i = j + 1
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && (isAlnum(s[j])) {
				j++
			}
			text := s[i:j]
			kind := "num"
			if strings.HasPrefix(text, "0x") || strings.HasPrefix(text, "0X") {
				kind = "hex"
			}
			out = append(out, token{kind: kind, text: text, pos: i})
			i = j
		case isAlnum(c):
			j := i + 1
			for j < len(s) && isAlnum(s[j]) {
				j++
			}
			out = append(out, token{kind: "ident", text: s[i:j], pos: i})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q at position %d", c, i+1)
		}
	}
	out = append(out, token{kind: "eof", pos: len(s)})
	return out, nil
}

func isAlnum(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ast is a parsed, not yet type-checked condition.
type ast struct {
	op   string // and, or, not, cmp
	kids []*ast
	arg  string
	cmp  string // ==, !=, <, <=, >, >=, in
	lits []token
}

type parser struct {
	toks  []token
	i     int
	depth int // of parentheses and nots around the current primary
}

// Parse parses one condition expression.
func parseExpr(s string) (*ast, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == "eof" {
		return nil, fmt.Errorf("empty condition")
	}
	a, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, fmt.Errorf("unexpected %q at position %d", t.text, t.pos+1)
	}
	return a, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *parser) keyword(w string) bool {
	t := p.peek()
	if t.kind == "ident" && strings.EqualFold(t.text, w) {
		p.i++
		return true
	}
	return false
}

func (p *parser) or() (*ast, error) { return p.joined("or", p.and) }

func (p *parser) and() (*ast, error) { return p.joined("and", p.primary) }

// joined parses operands joined by the keyword op ("a or b or c"); a lone
// operand stands for itself. or's operands are ands, so and binds tighter.
func (p *parser) joined(op string, operand func() (*ast, error)) (*ast, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	kids := []*ast{first}
	for p.keyword(op) {
		k, err := operand()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &ast{op: op, kids: kids}, nil
}

func (p *parser) primary() (*ast, error) {
	t := p.peek()
	if t.kind == "(" || t.kind == "ident" && strings.EqualFold(t.text, "not") {
		// Each level is one more recursion; bound them.
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > MaxConditionDepth {
			return nil, fmt.Errorf("parentheses and nots nest more than %d deep (MaxConditionDepth)", MaxConditionDepth)
		}
	}
	switch {
	case t.kind == "(":
		p.next()
		a, err := p.or()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != ")" {
			return nil, fmt.Errorf("expected ) at position %d", c.pos+1)
		}
		return a, nil
	case t.kind == "ident" && strings.EqualFold(t.text, "not"):
		p.next()
		a, err := p.primary()
		if err != nil {
			return nil, err
		}
		return &ast{op: "not", kids: []*ast{a}}, nil
	case t.kind == "ident":
		p.next()
		arg := t.text
		if p.keyword("in") {
			if c := p.next(); c.kind != "(" {
				return nil, fmt.Errorf("expected ( after %s in, at position %d", arg, c.pos+1)
			}
			var lits []token
			for {
				l := p.next()
				if !isLiteral(l) {
					return nil, fmt.Errorf("expected a value in the list of %s at position %d", arg, l.pos+1)
				}
				lits = append(lits, l)
				c := p.next()
				if c.kind == ")" {
					break
				}
				if c.kind != "," {
					return nil, fmt.Errorf("expected , or ) at position %d", c.pos+1)
				}
			}
			return &ast{op: "cmp", arg: arg, cmp: "in", lits: lits}, nil
		}
		op := p.next()
		if op.kind != "op" {
			return nil, fmt.Errorf("expected an operator (==, !=, <, <=, >, >=, in) after %q at position %d", arg, op.pos+1)
		}
		l := p.next()
		if !isLiteral(l) {
			return nil, fmt.Errorf("expected a value after %s %s at position %d", arg, op.text, l.pos+1)
		}
		return &ast{op: "cmp", arg: arg, cmp: op.text, lits: []token{l}}, nil
	case t.kind == "eof":
		return nil, fmt.Errorf("condition ends too early")
	default:
		return nil, fmt.Errorf("expected an argument name at position %d, got %q", t.pos+1, t.text)
	}
}

func isLiteral(t token) bool {
	switch t.kind {
	case "num", "hex", "str":
		return true
	case "ident":
		return strings.EqualFold(t.text, "true") || strings.EqualFold(t.text, "false")
	}
	return false
}
