package ratelog

import (
	"testing"
	"time"
)

func TestLimiterLetsOneLineThroughPerInterval(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	l := Limiter{Every: time.Minute}
	if ok, n := l.Allow(t0); !ok || n != 0 {
		t.Fatalf("first line: (%v, %d), want (true, 0)", ok, n)
	}
	for i := 1; i <= 5; i++ {
		if ok, _ := l.Allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("line %d within the minute let through", i)
		}
	}
	if ok, n := l.Allow(t0.Add(time.Minute)); !ok || n != 5 {
		t.Fatalf("after the minute: (%v, %d), want (true, 5 held back)", ok, n)
	}
}

func TestKeyedLimitsEachKeyOnItsOwn(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	k := NewKeyed(10 * time.Second)
	if ok, _ := k.Allow("us-east", t0); !ok {
		t.Fatal("first us-east line held back")
	}
	if ok, _ := k.Allow("eu-west", t0); !ok {
		t.Fatal("eu-west held back by us-east's line")
	}
	if ok, _ := k.Allow("us-east", t0.Add(time.Second)); ok {
		t.Fatal("second us-east line within 10s let through")
	}
	if ok, n := k.Allow("us-east", t0.Add(10*time.Second)); !ok || n != 1 {
		t.Fatalf("us-east after 10s: (%v, %d), want (true, 1)", ok, n)
	}
}
