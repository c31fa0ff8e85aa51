// Package cleanup undoes half-done work when a multi-step operation fails.
//
//	var undo cleanup.Stack
//	defer undo.Unwind()
//	... step; undo.Push(func() { remove it })
//	undo.Disarm() // just before the successful return
package cleanup

// Stack runs its functions in reverse order unless disarmed.
// It is not safe for concurrent use.
type Stack struct {
	fns      []func()
	disarmed bool
}

// Push adds an undo step.
func (s *Stack) Push(fn func()) { s.fns = append(s.fns, fn) }

// Disarm keeps the work: Unwind does nothing afterwards.
func (s *Stack) Disarm() { s.disarmed = true }

// Unwind runs the undo steps, last first, unless Disarm was called.
func (s *Stack) Unwind() {
	if s.disarmed {
		return
	}
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
	s.fns = nil
}
