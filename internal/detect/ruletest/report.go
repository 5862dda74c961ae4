package ruletest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
)

// WriteText writes one line per result ("ok   <rule>: <case>",
// "FAIL <rule>: <case>: <why>") and a summary, as `rules test` prints them.
func WriteText(w io.Writer, rep *Report) error {
	for _, r := range rep.Results {
		var err error
		switch {
		case r.Status == Pass:
			_, err = fmt.Fprintf(w, "ok   %s: %s\n", r.Rule, r.Case)
		case r.Case != "":
			_, err = fmt.Fprintf(w, "FAIL %s: %s: %s\n", r.Rule, r.Case, r.Message)
		case r.Rule != "":
			_, err = fmt.Fprintf(w, "FAIL %s (%s): %s\n", r.Rule, r.File, r.Message)
		default:
			_, err = fmt.Fprintf(w, "FAIL %s\n", r.Message)
		}
		if err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d passed, %d failed\n", rep.Passed, rep.Failed)
	return err
}

// WriteJSON writes the report as one JSON object: results, passed, failed.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Results []Result `json:"results"`
		Passed  int      `json:"passed"`
		Failed  int      `json:"failed"`
	}{rep.Results, rep.Passed, rep.Failed})
}

// JUnit XML, as CI systems read it: one testsuite per rule file, one
// testcase per case (a file-level problem is a testcase named after it).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	File     string      `xml:"file,attr,omitempty"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML.
func WriteJUnit(w io.Writer, rep *Report) error {
	out := junitSuites{Tests: len(rep.Results), Failures: rep.Failed}
	index := map[string]int{}
	for _, r := range rep.Results {
		name := r.Rule
		if name == "" {
			name = r.File
		}
		i, ok := index[r.File]
		if !ok {
			i = len(out.Suites)
			index[r.File] = i
			out.Suites = append(out.Suites, junitSuite{Name: name, File: r.File})
		}
		s := &out.Suites[i]
		c := junitCase{Name: r.Case, ClassName: name}
		if c.Name == "" {
			c.Name = "rule file"
		}
		if r.Status != Pass {
			c.Failure = &junitFailure{Message: r.Message, Text: r.Message}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
