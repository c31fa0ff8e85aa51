package cleanup

import (
	"slices"
	"testing"
)

func TestUnwindRunsInReverse(t *testing.T) {
	var got []int
	var s Stack
	for i := range 3 {
		s.Push(func() { got = append(got, i) })
	}
	s.Unwind()
	if !slices.Equal(got, []int{2, 1, 0}) {
		t.Fatalf("got %v, want [2 1 0]", got)
	}
}

func TestDisarmKeepsWork(t *testing.T) {
	ran := false
	var s Stack
	s.Push(func() { ran = true })
	s.Disarm()
	s.Unwind()
	if ran {
		t.Fatal("undo ran after Disarm")
	}
}
