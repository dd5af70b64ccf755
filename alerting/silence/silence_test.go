package silence

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

func ptr(b bool) *bool { return &b }

func valid() Silence {
	return Silence{Matchers: []Matcher{{Name: "check", Value: "web"}}, EndsAt: now.Add(time.Hour), CreatedBy: "ana", Comment: "db failover"}
}

func TestPrepare(t *testing.T) {
	s := valid()
	if err := s.Prepare(now); err != nil || !s.StartsAt.Equal(now) || !s.UpdatedAt.Equal(now) {
		t.Fatalf("valid: %v, starts %s", err, s.StartsAt)
	}
	for _, tc := range []struct {
		name string
		edit func(*Silence)
		want string
	}{
		{"no end", func(s *Silence) { s.EndsAt = time.Time{} }, "endsAt is required"},
		{"ends before it starts", func(s *Silence) { s.StartsAt = now.Add(2 * time.Hour) }, "is not after startsAt"},
		{"ended", func(s *Silence) { s.StartsAt, s.EndsAt = now.Add(-2*time.Hour), now.Add(-time.Hour) }, "is in the past"},
		{"too long", func(s *Silence) { s.EndsAt = now.Add(MaxLength + time.Hour) }, "at most 2160h0m0s"},
		{"no matcher", func(s *Silence) { s.Matchers = nil }, "at least one is required"},
		{"bad regex", func(s *Silence) { s.Matchers[0] = Matcher{Name: "check", Value: "(", IsRegex: true} }, "matchers[0].value: error parsing regexp"},
		{"no name", func(s *Silence) { s.Matchers[0].Name = "" }, "matchers[0].name is required"},
		{"huge value", func(s *Silence) { s.Matchers[0].Value = strings.Repeat("x", MaxText+1) }, "at most 1024 bytes"},
		{"no author", func(s *Silence) { s.CreatedBy = " " }, "createdBy is required"},
		{"no comment", func(s *Silence) { s.Comment = "" }, "comment is required"},
		{"bad id", func(s *Silence) { s.ID = "../x" }, "id: want 32 hexadecimal digits"},
	} {
		s := valid()
		tc.edit(&s)
		if err := s.Prepare(now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCovers(t *testing.T) {
	web := Check{ID: "web", Labels: map[string]string{"service": "shop", "team": "a"}, Regions: []string{"eu-west", "us-east"}}
	for _, tc := range []struct {
		name     string
		matchers []Matcher
		check    Check
		covers   bool
		regions  []string
	}{
		{"check", []Matcher{{Name: "check", Value: "web"}}, web, true, []string{"eu-west", "us-east"}},
		{"other check", []Matcher{{Name: "check", Value: "api"}}, web, false, nil},
		{"label", []Matcher{{Name: "service", Value: "shop"}}, web, true, []string{"eu-west", "us-east"}},
		{"label regex", []Matcher{{Name: "service", Value: "sh.*", IsRegex: true}}, web, true, nil},
		{"regex is anchored", []Matcher{{Name: "service", Value: "ho", IsRegex: true}}, web, false, nil},
		{"negated", []Matcher{{Name: "team", Value: "a", IsEqual: ptr(false)}}, web, false, nil},
		{"missing label is empty", []Matcher{{Name: "env", Value: ""}}, web, true, nil},
		{"one region of two", []Matcher{{Name: "region", Value: "eu-west"}}, web, false, []string{"eu-west"}},
		{"every region", []Matcher{{Name: "region", Value: "eu-west|us-east", IsRegex: true}}, web, true, []string{"eu-west", "us-east"}},
		{"all must match", []Matcher{{Name: "check", Value: "web"}, {Name: "service", Value: "blog"}}, web, false, nil},
	} {
		s := Silence{Matchers: tc.matchers, EndsAt: now.Add(time.Hour), CreatedBy: "ana", Comment: "x"}
		if err := s.Prepare(now); err != nil {
			t.Fatal(err)
		}
		if got := s.Covers(tc.check, now); got != tc.covers {
			t.Errorf("%s: Covers %v, want %v", tc.name, got, tc.covers)
		}
		if tc.regions != nil {
			if got := s.Restrict(tc.check.Regions); strings.Join(got, ",") != strings.Join(tc.regions, ",") {
				t.Errorf("%s: Restrict %v, want %v", tc.name, got, tc.regions)
			}
		}
		if s.Covers(tc.check, now.Add(2*time.Hour)) {
			t.Errorf("%s: covers after its end", tc.name)
		}
	}
}

func TestLifecycle(t *testing.T) {
	s := valid()
	s.StartsAt = now.Add(time.Hour)
	s.EndsAt = now.Add(2 * time.Hour)
	if err := s.Prepare(now); err != nil {
		t.Fatal(err)
	}
	if s.State(now) != "pending" || s.State(now.Add(90*time.Minute)) != "active" || s.State(now.Add(3*time.Hour)) != "expired" {
		t.Error("states")
	}
	s.Expire(now.Add(90 * time.Minute))
	if s.Active(now.Add(91*time.Minute)) || !s.EndsAt.Equal(now.Add(90*time.Minute)) {
		t.Errorf("expired silence still active, ends %s", s.EndsAt)
	}
	if a, b := NewID(), NewID(); !ValidID(a) || a == b {
		t.Errorf("ids %q %q", a, b)
	}
	if got := s.String(); !strings.Contains(got, `{check="web"} by ana`) {
		t.Errorf("String %q", got)
	}
}

func FuzzPrepare(f *testing.F) {
	f.Add("check", "web", true, "ana", "why")
	f.Add("service", "(a|b", true, "", "")
	f.Fuzz(func(t *testing.T, name, value string, regex bool, by, comment string) {
		s := Silence{Matchers: []Matcher{{Name: name, Value: value, IsRegex: regex}}, EndsAt: now.Add(time.Hour), CreatedBy: by, Comment: comment}
		if s.Prepare(now) == nil {
			s.Covers(Check{ID: value, Labels: map[string]string{name: value}, Regions: []string{value}}, now)
		}
	})
}
