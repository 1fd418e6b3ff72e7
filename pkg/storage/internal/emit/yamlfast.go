package emit

import (
	"bytes"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file prints JSON documents as YAML exactly as sigs.k8s.io/yaml's
// JSONToYAML does (the YAML of `kubectl get -o yaml`, and of this
// plugin's general path), without its round trip through go-yaml's parser
// and reflection: about twenty times faster on a pod. go-yaml v2 decides
// the layout from a few cursor variables (column, indentation, whether
// the last thing written was whitespace or indentation); yamlWriter keeps
// the same ones so folded lines, quoting and indentation come out the
// same. The equivalence is tested against sigs.k8s.io/yaml on generated
// objects of every kind of the scheme and by fuzzing (yamlfast_test.go).

const (
	yamlIndentStep = 2
	// yamlWidth is the column after which go-yaml folds long scalars at a
	// space.
	yamlWidth = 80
	// yamlSimpleKeyMax is the longest key written as `key: value`; longer
	// ones take the explicit `? key` form.
	yamlSimpleKeyMax = 128
)

type yamlStyle uint8

const (
	stylePlain yamlStyle = iota
	styleSingle
	styleDouble
	styleLiteral
)

type yamlWriter struct {
	out []byte
	// prefix goes after every '\n': "  " for an item of a List.
	prefix     string
	tree       *Tree
	column     int
	indent     int
	indents    []int
	whitespace bool
	indention  bool
	flowLevel  int
	keys       []sortKey
}

// AppendYAML appends the YAML of the JSON object doc to dst. It returns
// ErrUnusual for input the general path must handle.
func AppendYAML(dst []byte, t *Tree, doc []byte) ([]byte, error) {
	return AppendYAMLItem(dst, t, doc, false)
}

// AppendYAMLItem is AppendYAML, and with listItem the document as an item
// of a List: "- " before its first line, "  " before the others.
func AppendYAMLItem(dst []byte, t *Tree, doc []byte, listItem bool) ([]byte, error) {
	if err := t.Parse(doc); err != nil {
		return dst, err
	}
	return AppendYAMLTree(dst, t, listItem), nil
}

// isPlainKey reports whether the YAML printer writes s as a simple key
// plain and as it is (what str decides for it).
func isPlainKey(s []byte) bool {
	if len(s) == 0 || len(s) > yamlSimpleKeyMax || hasLineBreak(s) || containsNewline(s) || !readsAsString(s) || isBase60Float(s) {
		return false
	}
	a := analyzeScalar(s)
	return !a.multiline && a.blockPlainAllowed
}

// AppendYAMLTree is AppendYAMLItem of a tree already built (Wire.Build).
func AppendYAMLTree(dst []byte, t *Tree, listItem bool) []byte {
	w := yamlWriter{out: dst, tree: t, indent: -1, whitespace: true, indention: true}
	if listItem {
		w.out = append(w.out, '-', ' ')
		w.prefix = "  "
	}
	w.node(0, false, false, false)
	w.writeIndent() // the document end
	return w.out[:len(w.out)-len(w.prefix)]
}

func (w *yamlWriter) pushIndent(flow, indentless bool) {
	w.indents = append(w.indents, w.indent)
	switch {
	case w.indent < 0 && flow:
		w.indent = yamlIndentStep
	case w.indent < 0:
		w.indent = 0
	case !indentless:
		w.indent += yamlIndentStep
	}
}

func (w *yamlWriter) popIndent() {
	w.indent = w.indents[len(w.indents)-1]
	w.indents = w.indents[:len(w.indents)-1]
}

func (w *yamlWriter) newline() {
	w.out = append(w.out, '\n')
	w.out = append(w.out, w.prefix...)
	w.column = 0
}

// writeIndent starts a new line at the current indentation unless the
// cursor already stands there.
func (w *yamlWriter) writeIndent() {
	indent := max(w.indent, 0)
	if !w.indention || w.column > indent || w.column == indent && !w.whitespace {
		// The line break, the List prefix and the indentation in one
		// copy where they fit: writeIndent starts every line of a
		// listing, and the three appends were 6% of its rendering.
		lead := ""
		switch w.prefix {
		case "":
			lead = lineStart
		case "  ":
			lead = itemLineStart
		}
		if n := 1 + len(w.prefix) + indent; n <= len(lead) {
			w.out = append(w.out, lead[:n]...)
			w.column = indent
			w.whitespace, w.indention = true, true
			return
		}
		w.newline()
	}
	for w.column < indent {
		n := min(indent-w.column, len(spaces))
		w.out = append(w.out, spaces[:n]...)
		w.column += n
	}
	w.whitespace, w.indention = true, true
}

const (
	spaces = "                                                                "
	// lineStart and itemLineStart are a line break and the prefix
	// newline writes (none, or an item of a List's) before spaces.
	lineStart     = "\n" + spaces
	itemLineStart = "\n  " + spaces
)

func (w *yamlWriter) indicator(s string, needSpace, isWhitespace, isIndention bool) {
	if needSpace && !w.whitespace {
		w.out = append(w.out, ' ')
		w.column++
	}
	w.out = append(w.out, s...)
	w.column += len(s)
	w.whitespace = isWhitespace
	w.indention = w.indention && isIndention
}

// char copies the character at s[i] and returns the index after it.
func (w *yamlWriter) char(s []byte, i int) int {
	n := charWidth(s[i])
	w.out = append(w.out, s[i:i+n]...)
	w.column++
	return i + n
}

func charWidth(b byte) int {
	switch {
	case b < 0x80:
		return 1
	case b&0xE0 == 0xC0:
		return 2
	case b&0xF0 == 0xE0:
		return 3
	}
	return 4
}

// node writes node n in its context: an item of a block sequence, a
// value of a block mapping, or a simple key.
func (w *yamlWriter) node(n int32, inSequence, inMapping, simpleKey bool) {
	nd := w.tree.nodes[n]
	if nd.memo {
		w.memoNode(n, nd, inSequence, inMapping, simpleKey)
		return
	}
	w.value(n, nd, inSequence, inMapping, simpleKey)
}

// value is node without the cache.
func (w *yamlWriter) value(n int32, nd jsonNode, inSequence, inMapping, simpleKey bool) {
	t := w.tree
	switch nd.kind {
	case jsonObject, jsonArray:
		if nd.from == nd.to || w.flowLevel > 0 {
			open, closing := "[", "]"
			if nd.kind == jsonObject {
				open, closing = "{", "}"
			}
			w.indicator(open, true, true, false)
			w.pushIndent(true, false)
			w.popIndent()
			w.indicator(closing, false, false, false)
			return
		}
		if nd.kind == jsonArray {
			w.pushIndent(false, inMapping && !w.indention)
			for _, item := range t.kids[nd.from:nd.to] {
				w.writeIndent()
				w.indicator("-", true, false, true)
				w.node(item, true, false, false)
			}
			w.popIndent()
			return
		}
		w.pushIndent(false, false)
		kids := t.kids[nd.from:nd.to]
		if !nd.sorted {
			w.sortKeys(kids)
		}
		for k := 0; k < len(kids); k += 2 {
			w.writeIndent()
			keyNode := t.nodes[kids[k]]
			key := t.strBytes(keyNode)
			if keyNode.plainKey {
				// A simple key never folds, so the indentation a
				// scalar pushes does not matter here.
				if keyNode.static && t.staticSafe {
					w.plainASCII(key, false)
				} else {
					w.plain(key, false)
				}
				w.indicator(":", false, false, false)
			} else if len(key) <= yamlSimpleKeyMax && !hasLineBreak(key) {
				w.str(key, true)
				w.indicator(":", false, false, false)
			} else {
				w.indicator("?", true, false, true)
				w.node(kids[k], false, true, false)
				w.writeIndent()
				w.indicator(":", true, false, true)
			}
			w.node(kids[k+1], false, true, false)
		}
		w.popIndent()
	case jsonString:
		if nd.timestamp {
			w.pushIndent(true, false)
			w.doubleQuoted(t.strBytes(nd), !simpleKey)
			w.popIndent()
			return
		}
		w.str(t.strBytes(nd), simpleKey)
	case jsonNumber:
		w.number(t.rawBytes(nd), simpleKey)
	case jsonTrue:
		w.plainWord("true")
	case jsonFalse:
		w.plainWord("false")
	case jsonNull:
		w.plainWord("null")
	}
}

// plainWord writes a scalar that needs neither quotes nor folding.
func (w *yamlWriter) plainWord(s string) {
	w.pushIndent(true, false)
	if !w.whitespace {
		w.out = append(w.out, ' ')
		w.column++
	}
	w.out = append(w.out, s...)
	w.column += len(s)
	w.whitespace, w.indention = false, false
	w.popIndent()
}

// number writes a JSON number as go-yaml reads and writes it back: as an
// integer or a float in Go's shortest form, or, when it overflows a
// float, as the text it was.
func (w *yamlWriter) number(raw []byte, simpleKey bool) {
	s := string(raw)
	if len(raw) <= 18 && isDecimalInt(raw) {
		if s == "-0" {
			s = "0"
		}
		w.plainWord(s)
		return
	}
	if v, err := strconv.ParseInt(s, 0, 64); err == nil {
		w.plainWord(strconv.FormatInt(v, 10))
		return
	}
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		w.plainWord(strconv.FormatUint(v, 10))
		return
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		w.plainWord(strconv.FormatFloat(f, 'g', -1, 64))
		return
	}
	w.str(raw, simpleKey)
}

func isDecimalInt(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func hasLineBreak(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if isBreakAt(s, i) {
			return true
		}
	}
	return false
}

// str writes a string scalar, choosing its style as go-yaml does: plain
// when it would read back as the same string, literal when it has a
// newline, double-quoted otherwise, with the fallbacks its content
// forces.
func (w *yamlWriter) str(s []byte, simpleKey bool) {
	if len(s) > 0 && isPlainWord(s) {
		w.plainWordStr(s, simpleKey)
		return
	}
	a := analyzeScalar(s)
	var style yamlStyle
	switch {
	case containsNewline(s):
		style = styleLiteral
	case readsAsString(s) && !isBase60Float(s):
		style = stylePlain
	default:
		style = styleDouble
	}
	if simpleKey && a.multiline {
		style = styleDouble
	}
	if style == stylePlain && (!a.blockPlainAllowed || len(s) == 0 && simpleKey) {
		style = styleSingle
	}
	if style == styleSingle && !a.singleQuotedAllowed {
		style = styleDouble
	}
	if style == styleLiteral && (!a.blockAllowed || w.flowLevel > 0 || simpleKey) {
		style = styleDouble
	}
	w.pushIndent(true, false)
	switch style {
	case stylePlain:
		w.plain(s, !simpleKey)
	case styleSingle:
		w.singleQuoted(s, !simpleKey)
	case styleDouble:
		w.doubleQuoted(s, !simpleKey)
	case styleLiteral:
		w.literal(s)
	}
	w.popIndent()
}

// plainWordStr is str of a string isPlainWord accepts: the common case,
// decided as str decides the others with what isPlainWord implies:
// printable ASCII, so no line break, one column per byte, and every
// style allowed.
func (w *yamlWriter) plainWordStr(s []byte, simpleKey bool) {
	w.pushIndent(true, false)
	if readsAsString(s) && !isBase60Float(s) {
		w.plainASCII(s, !simpleKey)
	} else {
		w.doubleQuoted(s, !simpleKey)
	}
	w.popIndent()
}

func containsNewline(s []byte) bool {
	for _, c := range s {
		if c == '\n' {
			return true
		}
	}
	return false
}

func (w *yamlWriter) plain(s []byte, allowBreaks bool) {
	w.plainN(s, allowBreaks, runeCount(s))
}

// plainASCII is plain of an ASCII string.
func (w *yamlWriter) plainASCII(s []byte, allowBreaks bool) {
	w.plainN(s, allowBreaks, len(s))
}

// plainN is plain of a string of n characters.
func (w *yamlWriter) plainN(s []byte, allowBreaks bool, n int) {
	if !w.whitespace {
		w.out = append(w.out, ' ')
		w.column++
	}
	if w.column+n <= yamlWidth+1 || !allowBreaks || bytes.IndexByte(s, ' ') < 0 {
		// No space of it can stand beyond the fold column, or it has no
		// space to fold at (image IDs, container IDs, checksums: copied
		// a byte at a time by foldedRun, they were 6% of a YAML
		// listing's rendering). (Plain scalars have no line breaks:
		// analyzeScalar rules them out.)
		w.out = append(w.out, s...)
		w.column += n
		w.whitespace, w.indention = false, false
		return
	}
	w.foldedRun(s, allowBreaks, false)
	w.whitespace, w.indention = false, false
}

// foldedRun writes the characters of a plain or single-quoted scalar,
// folding long lines at a space as the YAML emitter does. The two styles
// differ only in where a fold may go (a quoted scalar never folds at its
// first or last character) and in the quote doubled inside quotes.
func (w *yamlWriter) foldedRun(s []byte, allowBreaks, quoted bool) {
	spaces, breaks := false, false
	for i := 0; i < len(s); {
		switch {
		case s[i] == ' ':
			canFold := i+1 >= len(s) || s[i+1] != ' '
			if quoted {
				canFold = i > 0 && i < len(s)-1 && s[i+1] != ' '
			}
			if allowBreaks && !spaces && w.column > yamlWidth && canFold {
				w.writeIndent()
				i++
			} else {
				i = w.char(s, i)
			}
			spaces = true
		case isBreakAt(s, i):
			if !breaks && s[i] == '\n' {
				w.newline()
			}
			i = w.lineBreak(s, i)
			w.indention = true
			breaks = true
		default:
			if breaks {
				w.writeIndent()
			}
			if quoted && s[i] == '\'' {
				w.out = append(w.out, '\'')
				w.column++
			}
			i = w.char(s, i)
			w.indention = false
			spaces, breaks = false, false
		}
	}
}

// runeCount counts characters as the emitter's column does: one per
// UTF-8 sequence.
func runeCount(s []byte) int {
	n := len(s)
	for _, c := range s {
		if c&0xC0 == 0x80 {
			n--
		}
	}
	return n
}

// lineBreak copies the line break at s[i].
func (w *yamlWriter) lineBreak(s []byte, i int) int {
	if s[i] == '\n' {
		w.newline()
		return i + 1
	}
	i = w.char(s, i)
	w.column = 0
	return i
}

func (w *yamlWriter) singleQuoted(s []byte, allowBreaks bool) {
	w.indicator("'", true, false, false)
	w.foldedRun(s, allowBreaks, true)
	w.indicator("'", false, false, false)
	w.whitespace, w.indention = false, false
}

const hexDigits = "0123456789ABCDEF"

func (w *yamlWriter) doubleQuoted(s []byte, allowBreaks bool) {
	w.indicator(`"`, true, false, false)
	if n := runeCount(s); (w.column+n <= yamlWidth+1 || !allowBreaks) && isQuotableASCII(s) {
		w.out = append(w.out, s...)
		w.column += n
		w.indicator(`"`, false, false, false)
		w.whitespace, w.indention = false, false
		return
	}
	// go-yaml escapes every character of a value that starts with a BOM.
	bom := len(s) >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF
	spaces := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case bom || !isPrintableAt(s, i) || isBreakAt(s, i) || c == '"' || c == '\\':
			n := charWidth(c)
			r := decodeRuneLoose(s[i : i+n])
			i += n
			w.out = append(w.out, '\\')
			w.column++
			var short byte
			switch r {
			case 0x00:
				short = '0'
			case 0x07:
				short = 'a'
			case 0x08:
				short = 'b'
			case 0x09:
				short = 't'
			case 0x0A:
				short = 'n'
			case 0x0B:
				short = 'v'
			case 0x0C:
				short = 'f'
			case 0x0D:
				short = 'r'
			case 0x1B:
				short = 'e'
			case 0x22:
				short = '"'
			case 0x5C:
				short = '\\'
			case 0x85:
				short = 'N'
			case 0xA0:
				short = '_'
			case 0x2028:
				short = 'L'
			case 0x2029:
				short = 'P'
			}
			if short != 0 {
				w.out = append(w.out, short)
				w.column++
			} else {
				digits := 8
				switch {
				case r <= 0xFF:
					w.out, digits = append(w.out, 'x'), 2
				case r <= 0xFFFF:
					w.out, digits = append(w.out, 'u'), 4
				default:
					w.out = append(w.out, 'U')
				}
				w.column++
				for k := (digits - 1) * 4; k >= 0; k -= 4 {
					w.out = append(w.out, hexDigits[(r>>uint(k))&0xF])
					w.column++
				}
			}
			spaces = false
		case c == ' ':
			if allowBreaks && !spaces && w.column > yamlWidth && i > 0 && i < len(s)-1 {
				w.writeIndent()
				if s[i+1] == ' ' {
					w.out = append(w.out, '\\')
					w.column++
				}
				i++
			} else {
				i = w.char(s, i)
			}
			spaces = true
		default:
			i = w.char(s, i)
			spaces = false
		}
	}
	w.indicator(`"`, false, false, false)
	w.whitespace, w.indention = false, false
}

// isQuotableASCII reports printable ASCII without '"' and '\\': written
// between double quotes as it is.
func isQuotableASCII(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7E || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// decodeRuneLoose decodes one UTF-8 sequence by its bit pattern alone.
func decodeRuneLoose(b []byte) rune {
	var r rune
	switch len(b) {
	case 1:
		return rune(b[0] & 0x7F)
	case 2:
		r = rune(b[0] & 0x1F)
	case 3:
		r = rune(b[0] & 0x0F)
	default:
		r = rune(b[0] & 0x07)
	}
	for _, c := range b[1:] {
		r = r<<6 + rune(c&0x3F)
	}
	return r
}

func (w *yamlWriter) literal(s []byte) {
	w.indicator("|", true, false, false)
	if s[0] == ' ' || isBreakAt(s, 0) {
		w.indicator(strconv.Itoa(yamlIndentStep), false, false, false)
	}
	// Chomping: strip without a final line break, keep with more than one.
	last := lastCharStart(s, len(s))
	switch {
	case !isBreakAt(s, last):
		w.indicator("-", false, false, false)
	case last == 0 || isBreakAt(s, lastCharStart(s, last)):
		w.indicator("+", false, false, false)
	}
	w.newline()
	w.indention, w.whitespace = true, true
	breaks := true
	for i := 0; i < len(s); {
		if isBreakAt(s, i) {
			i = w.lineBreak(s, i)
			w.indention = true
			breaks = true
			continue
		}
		if breaks {
			w.writeIndent()
		}
		i = w.char(s, i)
		w.indention = false
		breaks = false
	}
}

// lastCharStart returns where the character before s[end] starts.
func lastCharStart(s []byte, end int) int {
	i := end - 1
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return i
}

// isBreakAt reports a line break at s[i]: CR, LF, NEL, LS or PS.
func isBreakAt(s []byte, i int) bool {
	switch s[i] {
	case '\r', '\n':
		return true
	case 0xC2:
		return i+1 < len(s) && s[i+1] == 0x85
	case 0xE2:
		return i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9)
	}
	return false
}

// isPrintableAt reports whether go-yaml writes the character at s[i] as
// it is: LF, printable ASCII, and the BMP but surrogates, BOM, U+FFFE and
// U+FFFF. Tabs, other controls and characters beyond the BMP are escaped.
func isPrintableAt(s []byte, i int) bool {
	c := s[i]
	switch {
	case c == 0x0A, c >= 0x20 && c <= 0x7E:
		return true
	case c == 0xC2:
		return i+1 < len(s) && s[i+1] >= 0xA0
	case c > 0xC2 && c < 0xED, c == 0xEE:
		return true
	case c == 0xED:
		return i+1 < len(s) && s[i+1] < 0xA0
	case c == 0xEF:
		if i+2 >= len(s) {
			return true
		}
		return !(s[i+1] == 0xBB && s[i+2] == 0xBF) && !(s[i+1] == 0xBF && (s[i+2] == 0xBE || s[i+2] == 0xBF))
	}
	return false
}

func isBlankAt(s []byte, i int) bool { return s[i] == ' ' || s[i] == '\t' }

type scalarAnalysis struct {
	multiline           bool
	blockPlainAllowed   bool
	singleQuotedAllowed bool
	blockAllowed        bool
}

// analyzeScalar finds which styles can carry s, by the rules of go-yaml's
// emitter (block context only: these printers write no flow scalars).
func analyzeScalar(s []byte) scalarAnalysis {
	if len(s) == 0 {
		return scalarAnalysis{blockPlainAllowed: true, singleQuotedAllowed: true}
	}
	if isPlainWord(s) {
		return scalarAnalysis{blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: true}
	}
	var (
		indicators                           bool
		lineBreaks, special                  bool
		leadingSpace, leadingBreak           bool
		trailingSpace, trailingBreak         bool
		breakSpace, spaceBreak               bool
		previousSpace, previousBreak         bool
		precededByWhitespace, followedBySpac bool
	)
	if len(s) >= 3 && (s[0] == '-' && s[1] == '-' && s[2] == '-' || s[0] == '.' && s[1] == '.' && s[2] == '.') {
		indicators = true
	}
	precededByWhitespace = true
	for i, n := 0, 0; i < len(s); i += n {
		c := s[i]
		n = charWidth(c)
		followedBySpac = i+n >= len(s) || isBlankAt(s, i+n)
		if i == 0 {
			switch c {
			case '#', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
				indicators = true
			case '?', ':', '-':
				if followedBySpac {
					indicators = true
				}
			}
		} else {
			switch c {
			case ':':
				if followedBySpac {
					indicators = true
				}
			case '#':
				if precededByWhitespace {
					indicators = true
				}
			}
		}
		if !isPrintableAt(s, i) {
			special = true
		}
		switch {
		case c == ' ':
			if i == 0 {
				leadingSpace = true
			}
			if i+n == len(s) {
				trailingSpace = true
			}
			if previousBreak {
				breakSpace = true
			}
			previousSpace, previousBreak = true, false
		case isBreakAt(s, i):
			lineBreaks = true
			if i == 0 {
				leadingBreak = true
			}
			if i+n == len(s) {
				trailingBreak = true
			}
			if previousSpace {
				spaceBreak = true
			}
			previousSpace, previousBreak = false, true
		default:
			previousSpace, previousBreak = false, false
		}
		precededByWhitespace = c == ' ' || c == '\t' || c == 0 || isBreakAt(s, i)
	}
	a := scalarAnalysis{multiline: lineBreaks, blockPlainAllowed: true, singleQuotedAllowed: true, blockAllowed: true}
	if leadingSpace || leadingBreak || trailingSpace || trailingBreak || lineBreaks || indicators {
		a.blockPlainAllowed = false
	}
	if trailingSpace {
		a.blockAllowed = false
	}
	if breakSpace {
		a.blockPlainAllowed, a.singleQuotedAllowed = false, false
	}
	if spaceBreak || special {
		a.blockPlainAllowed, a.singleQuotedAllowed, a.blockAllowed = false, false, false
	}
	return a
}

// plainWordTail marks the bytes that never change how a scalar may be
// written when they are not its first and stand between two that are not
// spaces: printable ASCII but space.
var plainWordTail = func() (t [256]bool) {
	for c := 0x21; c <= 0x7E; c++ {
		t[c] = true
	}
	return t
}()

// isPlainWord is the common case of analyzeScalar: printable ASCII
// starting with a letter, digit, '/' or '_', not ending with a space or
// ':', without ": " or " #" (indicators) or two spaces in a row, which
// every style can carry.
func isPlainWord(s []byte) bool {
	c := s[0]
	if !(c|0x20 >= 'a' && c|0x20 <= 'z' || c >= '0' && c <= '9' || c == '/' || c == '_') {
		return false
	}
	last := s[len(s)-1]
	if last == ' ' || last == ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if plainWordTail[c] {
			continue
		}
		if c != ' ' || s[i-1] == ':' || s[i-1] == ' ' || s[i+1] == '#' {
			return false
		}
	}
	return true
}

// yamlSpecialWords read as booleans, null, infinities or NaN when plain:
// a string spelled so must be quoted. None is longer than five bytes.
var yamlSpecialWords = strings.Fields("y Y yes Yes YES true True TRUE on On ON n N no No NO false False FALSE off Off OFF ~ null Null NULL .nan .NaN .NAN .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF")

// specialWordStart marks the first letters of the yamlSpecialWords that
// start with a letter or '~': a table, not strings.IndexByte, which is a
// call for each string a listing prints (2% of its YAML rendering).
var specialWordStart = func() (t [256]bool) {
	for _, c := range "yYnNtTfFoO~" {
		t[c] = true
	}
	return t
}()

// specialWordsByLen are yamlSpecialWords by their length, so a word is
// compared with the few of its own length, not with all 34: isSpecialWord
// runs for every string that starts as one of them does ("name", "true",
// "tier", ...).
var specialWordsByLen = func() (t [6][]string) {
	for _, w := range yamlSpecialWords {
		t[len(w)] = append(t[len(w)], w)
	}
	return t
}()

func isSpecialWord(s []byte) bool {
	if len(s) >= len(specialWordsByLen) {
		return false
	}
	for _, w := range specialWordsByLen[len(s)] {
		if string(s) == w {
			return true
		}
	}
	return false
}

var yamlFloatPattern = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// readsAsString reports whether s, written plain, reads back as a string
// in YAML 1.1 as go-yaml resolves it (not a bool, null, number or
// timestamp).
func readsAsString(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	switch c := s[0]; {
	case c == '+' || c == '-' || c >= '0' && c <= '9':
	case c == '.':
		if isSpecialWord(s) {
			return false
		}
		// Only ".5"-like text parses as a float.
		if len(s) < 2 || s[1] < '0' || s[1] > '9' {
			return true
		}
		_, err := strconv.ParseFloat(string(s), 64)
		return err != nil
	case specialWordStart[c]:
		return !isSpecialWord(s)
	default:
		return true
	}
	if len(s) <= 18 && isDecimalInt(s) {
		// Digits alone (a pod-template hash, a port in an annotation):
		// an integer, in base 8 when they start with 0 and fit, else a
		// float, found without the conversions below.
		return false
	}
	if isSpecialWord(s) {
		return false
	}
	if looksLikeTimestamp(s) {
		return false
	}
	// What remains to try are numbers: integers in Go's base-prefixed
	// syntax, floats, binary. A character none of them has, a colon or
	// space, a second dot, a sign inside that does not follow an
	// exponent, or without a base prefix a letter other than an exponent,
	// makes a string.
	body := s
	if body[0] == '+' || body[0] == '-' {
		body = body[1:]
	}
	prefixed := len(body) > 1 && body[0] == '0' && strings.IndexByte("xXoObB", body[1]) >= 0
	dots := 0
	for i, c := range s {
		if !numberChar[c] {
			return true
		}
		switch {
		case c == '.':
			if dots++; dots > 1 {
				return true
			}
		case (c == '+' || c == '-') && i > 0 && s[i-1] != 'e' && s[i-1] != 'E':
			return true
		case !prefixed && c != 'e' && c != 'E' && c|0x20 >= 'a' && c|0x20 <= 'z':
			return true
		}
	}
	plain := strings.ReplaceAll(string(s), "_", "")
	if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return false
	}
	if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return false
	}
	if yamlFloatPattern.MatchString(plain) {
		if _, err := strconv.ParseFloat(plain, 64); err == nil {
			return false
		}
	}
	if rest, ok := strings.CutPrefix(plain, "0b"); ok {
		if _, err := strconv.ParseInt(rest, 2, 64); err == nil {
			return false
		}
		if _, err := strconv.ParseUint(rest, 2, 64); err == nil {
			return false
		}
	} else if rest, ok := strings.CutPrefix(plain, "-0b"); ok {
		if _, err := strconv.ParseInt("-"+rest, 2, 64); err == nil {
			return false
		}
	}
	return true
}

// numberChar marks the characters of Go integer literals of any base,
// underscores, signs and YAML floats.
var numberChar = func() (t [256]bool) {
	for _, c := range "0123456789abcdefABCDEFxXoO+-._" {
		t[c] = true
	}
	return t
}()

var yamlTimestampLayouts = []string{
	"2006-1-2T15:4:5.999999999Z07:00",
	"2006-1-2t15:4:5.999999999Z07:00",
	"2006-1-2 15:4:5.999999999",
	"2006-1-2",
}

// looksLikeTimestamp reports whether go-yaml reads s, plain, as a
// timestamp: four digits, a dash, and one of its layouts.
func looksLikeTimestamp(s []byte) bool {
	if len(s) < 5 || s[4] != '-' {
		return false
	}
	for _, c := range s[:4] {
		if c < '0' || c > '9' {
			return false
		}
	}
	str := string(s)
	for _, layout := range yamlTimestampLayouts {
		if _, err := time.Parse(layout, str); err == nil {
			return true
		}
	}
	return false
}

var base60Pattern = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)

// isBase60Float reports YAML 1.1 sexagesimal numbers ("1:20"), which
// go-yaml quotes for the sake of other parsers.
func isBase60Float(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	c := s[0]
	if !(c == '+' || c == '-' || c >= '0' && c <= '9') {
		return false
	}
	for _, b := range s {
		if b == ':' {
			return base60Pattern.Match(s)
		}
	}
	return false
}

// yamlKeyLess orders mapping keys as go-yaml does: letters after other
// characters, runs of digits by their value ("a2" before "a10").
func yamlKeyLess(a, b []byte) bool {
	if isASCII(a) && isASCII(b) {
		return asciiKeyLess(a, b)
	}
	ar, br := []rune(string(a)), []rune(string(b))
	return naturalLess(len(ar), len(br), func(i int) rune { return ar[i] }, func(i int) rune { return br[i] })
}

// asciiKeyLess is yamlKeyLess for two ASCII strings.
func asciiKeyLess(a, b []byte) bool {
	{
		// Up to the first difference the two agree; where that is
		// between two letters, or one string ends, bytes decide.
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		if i == len(a) || i == len(b) {
			return len(a) < len(b)
		}
		if la, lb := isLetter(rune(a[i])), isLetter(rune(b[i])); la || lb {
			return la && lb && a[i] < b[i] || !la && lb
		}
		return naturalLess(len(a), len(b), func(i int) rune { return rune(a[i]) }, func(i int) rune { return rune(b[i]) })
	}
}

func isASCII(s []byte) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return r|0x20 >= 'a' && r|0x20 <= 'z'
	}
	return unicode.IsLetter(r)
}

func isDigit(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= '0' && r <= '9'
	}
	return unicode.IsDigit(r)
}

// naturalLess compares two rune sequences of lengths na and nb.
func naturalLess(na, nb int, a, b func(int) rune) bool {
	for i := 0; i < na && i < nb; i++ {
		ra, rb := a(i), b(i)
		if ra == rb {
			continue
		}
		la, lb := isLetter(ra), isLetter(rb)
		if la || lb {
			if la && lb {
				return ra < rb
			}
			return lb
		}
		// Compare the digit runs starting here by value. A zero after
		// other digits continues a number, so the runs get a leading 1.
		var va, vb int64
		if ra == '0' || rb == '0' {
			for j := i - 1; j >= 0 && isDigit(a(j)); j-- {
				if a(j) != '0' {
					va, vb = 1, 1
					break
				}
			}
		}
		ea := i
		for ; ea < na && isDigit(a(ea)); ea++ {
			va = va*10 + int64(a(ea)-'0')
		}
		eb := i
		for ; eb < nb && isDigit(b(eb)); eb++ {
			vb = vb*10 + int64(b(eb)-'0')
		}
		if va != vb {
			return va < vb
		}
		if ea != eb {
			return ea < eb
		}
		return ra < rb
	}
	return na < nb
}

// sortKeys sorts an object's key, value pairs in go-yaml's key order.
func (w *yamlWriter) sortKeys(kids []int32) {
	t := w.tree
	if len(kids) < 4 {
		return
	}
	keys := w.keys[:0]
	for k := 0; k < len(kids); k += 2 {
		keys = append(keys, sortKey{t.strBytes(t.nodes[kids[k]]), kids[k], kids[k+1]})
	}
	w.keys = keys
	sortKeyList(keys)
	for i, k := range keys {
		kids[2*i], kids[2*i+1] = k.keyNode, k.valueNode
	}
}

// sortKeyList sorts keys in go-yaml's key order. It is not a stable sort
// and the order is not transitive for some keys, so both printers sort
// the same keys in the same order in through it.
func sortKeyList(keys []sortKey) {
	n := len(keys)
	if n < 2 {
		return
	}
	allASCII := true
	for _, k := range keys {
		allASCII = allASCII && isASCII(k.key)
	}
	less := yamlKeyLess
	if allASCII {
		less = asciiKeyLess
	}
	sorted := true
	for i := 1; i < n && sorted; i++ {
		sorted = !less(keys[i].key, keys[i-1].key)
	}
	if sorted {
		return
	}
	if n < 16 {
		for i := 1; i < n; i++ {
			for j := i; j > 0 && less(keys[j].key, keys[j-1].key); j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
	} else {
		sort.Slice(keys, func(i, j int) bool { return less(keys[i].key, keys[j].key) })
	}
}

type sortKey struct {
	key                []byte
	keyNode, valueNode int32
}

// sortPairs sorts key, value pairs by key.
func sortPairs(kids []int32, less func(a, b int32) bool) {
	n := len(kids) / 2
	if n < 12 {
		for i := 1; i < n; i++ {
			for j := i; j > 0 && less(kids[2*j], kids[2*j-2]); j-- {
				kids[2*j], kids[2*j-2] = kids[2*j-2], kids[2*j]
				kids[2*j+1], kids[2*j-1] = kids[2*j-1], kids[2*j+1]
			}
		}
		return
	}
	sort.Sort(pairSorter{kids, less})
}

type pairSorter struct {
	kids []int32
	less func(a, b int32) bool
}

func (p pairSorter) Len() int           { return len(p.kids) / 2 }
func (p pairSorter) Less(i, j int) bool { return p.less(p.kids[2*i], p.kids[2*j]) }
func (p pairSorter) Swap(i, j int) {
	p.kids[2*i], p.kids[2*j] = p.kids[2*j], p.kids[2*i]
	p.kids[2*i+1], p.kids[2*j+1] = p.kids[2*j+1], p.kids[2*i+1]
}
