package status

import (
	"net/url"
	"slices"
	"testing"

	"github.com/outposthq/outpost/alerting/decide"
)

func TestSelect(t *testing.T) {
	ov := Status{Checks: []CheckStatus{
		{ID: "a", State: decide.StateOK}, {ID: "b", State: decide.StateDown}, {ID: "c"},
		{ID: "d", State: decide.StateOK}, {ID: "e", State: decide.StateDegraded}, {ID: "f", State: decide.StateUnknown},
	}}
	tests := []struct {
		name  string
		query string
		ids   []string
		page  PageInfo
	}{
		{"not OK first", "per_page=4", []string{"b", "f", "e", "c"}, PageInfo{Page: 1, PerPage: 4, Pages: 2, Total: 6, Next: "?page=2&per_page=4"}},
		{"second page", "page=2&per_page=4", []string{"a", "d"}, PageInfo{Page: 2, PerPage: 4, Pages: 2, Total: 6, Prev: "?page=1&per_page=4"}},
		{"past the end", "page=9&per_page=4", []string{}, PageInfo{Page: 9, PerPage: 4, Pages: 2, Total: 6, Prev: "?page=2&per_page=4"}},
		{"by state", "state=OK", []string{"a", "d"}, PageInfo{Page: 1, PerPage: DefaultPerPage, Pages: 1, Total: 2, State: "OK"}},
		{"pending", "state=PENDING", []string{"c"}, PageInfo{Page: 1, PerPage: DefaultPerPage, Pages: 1, Total: 1, State: "PENDING"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			q, err := ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			idx, sum, pg := Select(ov, q)
			ids := []string{}
			for _, i := range idx {
				ids = append(ids, ov.Checks[i].ID)
			}
			if !slices.Equal(ids, tc.ids) || pg != tc.page {
				t.Fatalf("Select = %v, %+v\nwant %v, %+v", ids, pg, tc.ids, tc.page)
			}
			if sum.Checks != 6 || sum.States["OK"] != 2 || sum.States["PENDING"] != 1 {
				t.Fatalf("summary %+v", sum)
			}
		})
	}
}

func TestParseQueryRefuses(t *testing.T) {
	for _, q := range []string{"page=0", "page=x", "per_page=-1", "page=99999999999", "state=down", "state=STALE"} {
		v, _ := url.ParseQuery(q)
		if _, err := ParseQuery(v); err == nil {
			t.Errorf("%s accepted", q)
		}
	}
	v, _ := url.ParseQuery("per_page=100000")
	if q, err := ParseQuery(v); err != nil || q.PerPage != MaxPerPage {
		t.Errorf("per_page=100000: %+v, %v; want MaxPerPage", q, err)
	}
}
