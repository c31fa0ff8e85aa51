package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"
)

// humanSize prints bytes the way docker's tables do: decimal units, three
// significant digits (4.26MB, 912kB, 0B).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

// humanDuration is docker's "CREATED" wording, without the " ago".
func humanDuration(d time.Duration) string {
	s := int(d.Seconds())
	switch {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(d.Minutes())
	switch {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	h := int(d.Hours() + 0.5)
	switch {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

func since(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return humanDuration(time.Since(t)) + " ago"
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		r := []rune(s)
		r[0] = unicode.ToUpper(r[0])
		return string(r)
	},
	"join":  strings.Join,
	"split": strings.Split,
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
}

// table prints rows (maps of field → value) as docker's --format does:
// "" is the default table (columns in cols), "json" one JSON object per
// line, "table TEMPLATE" a table with headers from headers, anything else a
// Go template per row.
type table struct {
	cols    []string          // default columns
	headers map[string]string // field → column header
}

func (t table) print(w io.Writer, format string, rows []map[string]string) error {
	if format == "" || format == "table" {
		var parts []string
		for _, c := range t.cols {
			parts = append(parts, "{{."+c+"}}")
		}
		format = "table " + strings.Join(parts, "\t")
	}
	if format == "json" {
		for _, r := range rows {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, string(b))
		}
		return nil
	}
	isTable := strings.HasPrefix(format, "table")
	format = strings.TrimPrefix(format, "table")
	format = strings.TrimLeft(format, " ")
	// Docker's templates write "\t" literally for a tab.
	format = strings.ReplaceAll(format, `\t`, "\t")
	format = strings.ReplaceAll(format, `\n`, "\n")
	tmpl, err := template.New("format").Funcs(templateFuncs).Option("missingkey=error").Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %v", err)
	}
	out := w
	var tw *tabwriter.Writer
	if isTable {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		hdr := map[string]string{}
		for k, v := range t.headers {
			hdr[k] = v
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, hdr); err != nil {
			return fmt.Errorf("template: %v", err)
		}
		fmt.Fprintln(out, strings.TrimRight(buf.String(), "\n"))
	}
	for _, r := range rows {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, r); err != nil {
			return fmt.Errorf("template: %v", err)
		}
		fmt.Fprintln(out, strings.TrimRight(buf.String(), "\n"))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// execTemplate runs a --format template over v as its JSON form, so
// fields are named as in the JSON output (.Id, .Config.Cmd), as docker's
// inspect does.
func execTemplate(w io.Writer, format string, v any) error {
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(strings.ReplaceAll(format, `\n`, "\n"))
	if err != nil {
		return fmt.Errorf("template parsing error: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, generic); err != nil {
		return fmt.Errorf("template: %v", err)
	}
	fmt.Fprintln(w, strings.TrimRight(buf.String(), "\n"))
	return nil
}
