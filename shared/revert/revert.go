// Package revert undoes the finished steps of a multi-step change when a later step fails.
//
//	r := revert.New()
//	defer r.Fail()
//	r.Add(func() { _ = os.RemoveAll(dir) })
//	...
//	r.Success()
package revert

// Reverter collects undo functions, run in reverse order by Fail unless Success was called.
type Reverter struct {
	fns []func()
}

// New returns an empty Reverter.
func New() *Reverter { return &Reverter{} }

// Add registers an undo step.
func (r *Reverter) Add(f func()) { r.fns = append(r.fns, f) }

// Fail runs the undo steps, newest first. It does nothing after Success.
func (r *Reverter) Fail() {
	for i := len(r.fns) - 1; i >= 0; i-- {
		r.fns[i]()
	}

	r.fns = nil
}

// Success forgets the undo steps.
func (r *Reverter) Success() { r.fns = nil }
