package api

import (
	"context"
	"html"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pageLogLines is how many lines of each job's log the page carries at most: each line has an
// element, an id and a link, so short lines would otherwise make a page many times the size of
// its log.
const pageLogLines = 2000

// lineID is the id of a log line on the pipeline page, "test/unit-L12". It is unique on the
// page: an id splits at its last "-L" into one job name and one number, and job anchors begin
// with "job-", which no job name (build, release, test/…) does.
func lineID(job string, n int) string { return job + "-L" + strconv.Itoa(n) }

// fragment is id written as a URL's fragment, escaped where a fragment must be.
func fragment(id string) string { return (&url.URL{Fragment: id}).EscapedFragment() }

// logLines renders a job's log as the page shows it: each line an element with an id and a
// link to itself (its number comes from CSS, so copying the log copies no numbers), numbered
// from first, its text escaped and its colours as spans. The style is carried from line to
// line, as a terminal carries it.
func logLines(job string, first int, text string) template.HTML {
	var out []byte
	var st sgr
	for n := first; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		id := html.EscapeString(lineID(job, n))
		href := html.EscapeString("#" + fragment(lineID(job, n)))
		out = append(out, `<span class="line" id="`+id+`"><a class="ln" href="`+href+`" data-n="`+strconv.Itoa(n)+`"></a>`...)
		out = renderLine(out, line, &st)
		out = append(out, "\n</span>"...)
		text = rest
	}
	return template.HTML(out) // every byte of the log went through renderLine, which escapes
}

// pageLog reads what the page shows of a job attempt's log: at most pageLogTail bytes and
// pageLogLines lines, from the start of a line, and the number of that line in the log as the
// store keeps it. For a job
// still running it leaves out a last line without its newline, and next points at that line's
// start, so the page's script reads it whole and numbers it once.
func (s *Server) pageLog(ctx context.Context, id int64, job string, attempt int, running bool) (text string, first int, next int64, err error) {
	text, next, err = s.pipelines.LogFrom(ctx, id, job, attempt, -pageLogTail)
	if err != nil {
		return "", 0, 0, err
	}
	first = 1
	if len(text) >= pageLogTail {
		// There may be lines before the tail: read the log whole (the store keeps at most its
		// cap) to number the lines shown as the whole log numbers them.
		all, end, err := s.pipelines.LogFrom(ctx, id, job, attempt, 0)
		if err != nil {
			return "", 0, 0, err
		}
		cut := lineStart(all, len(all)-pageLogTail)
		text, next, first = all[cut:], end, 1+strings.Count(all[:cut], "\n")
	}
	if extra := strings.Count(text, "\n") - pageLogLines; extra > 0 {
		cut := 0
		for range extra {
			cut += strings.IndexByte(text[cut:], '\n') + 1
		}
		text, first = text[cut:], first+extra
	}
	if running {
		if i := strings.LastIndexByte(text, '\n'); i+1 < len(text) {
			next -= int64(len(text) - (i + 1))
			text = text[:i+1]
		}
	}
	return text, first, next, nil
}

// lineStart is where the page's part of a log begins: the start of the first line that begins
// at or after at, or at itself (moved to a character's start) when the rest is one line.
func lineStart(all string, at int) int {
	if at <= 0 {
		return 0
	}
	if all[at-1] == '\n' { // a line begins at at: the search below would go past it
		return at
	}
	if i := strings.IndexByte(all[at:max(at, len(all)-1)], '\n'); i >= 0 {
		return at + i + 1
	}
	for at < len(all) && !utf8.RuneStart(all[at]) {
		at++
	}
	return at
}
