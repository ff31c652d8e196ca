package imagebuild

// Build stages, in order, with the overall percentage at which each starts.
const (
	stageStart = iota
	stageResolve
	stageRetrieve
	stageExtract
	stageUnpack
	stageConfigure
	stageCustomize
	stagePack
	stageDone
)

var stages = [...]struct {
	name  string
	start int
}{
	stageStart:     {"starting", 0},
	stageResolve:   {"resolving", 2},
	stageRetrieve:  {"retrieving", 5},
	stageExtract:   {"extracting", 35},
	stageUnpack:    {"installing", 45},
	stageConfigure: {"configuring", 65},
	stageCustomize: {"customizing", 85},
	stagePack:      {"packing", 88},
	stageDone:      {"done", 100},
}

// expectedPackages estimates how many packages debootstrap handles (about 110 for the
// debian-12 recipe); it only scales the progress within a stage.
const expectedPackages = 110

// tracker turns stage steps into a monotonic overall percentage for the caller's callback.
type tracker struct {
	report func(stage string, pct int)
	stage  int
	count  int // items seen in the current stage
	total  int // packages retrieved, the unit of later stages
	last   int
}

func (p *tracker) step(stage, items int) {
	if stage < p.stage {
		return
	}

	if stage > p.stage {
		if p.stage == stageRetrieve {
			p.total = p.count
		}

		p.stage = stage
		p.count = 0
	}

	p.count += items

	total := p.total
	if total == 0 {
		total = expectedPackages
	}

	pct := stages[stage].start
	if stage < stageDone {
		span := stages[stage+1].start - pct
		pct += min(span*p.count/total, span-1)
	}

	if pct < p.last {
		pct = p.last
	}

	if pct == p.last && stage != stageDone && p.count > 1 {
		return // nothing new to say
	}

	p.last = pct

	if p.report != nil {
		p.report(stages[stage].name, pct)
	}
}
