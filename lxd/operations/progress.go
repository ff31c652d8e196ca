package operations

import (
	"fmt"
	"strconv"
	"time"

	"github.com/berth-dev/berth/shared/fstree"
	"github.com/berth-dev/berth/shared/units"
)

// progressInterval spaces progress updates: each one is an event to every listener.
const progressInterval = 500 * time.Millisecond

// ReportProgress publishes p in op's metadata until op ends: "progress" holds the stage and
// the files and bytes done (strings, as LXD's ioprogress has them), and "<stage>_progress"
// a line the stock lxc client prints while it waits.
func ReportProgress(op *Operation, stage string, p *fstree.Progress) {
	go func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		var last [2]int64
		for {
			select {
			case <-op.Done():
				return
			case <-t.C:
			}

			files, bytes := p.Counts()
			if [2]int64{files, bytes} == last {
				continue
			}

			last = [2]int64{files, bytes}
			_ = op.UpdateMetadata(map[string]any{
				"progress": map[string]string{
					"stage": stage,
					"files": strconv.FormatInt(files, 10),
					"bytes": strconv.FormatInt(bytes, 10),
				},
				stage + "_progress": fmt.Sprintf("%d files, %s", files, units.BytesIEC(bytes)),
			})
		}
	}()
}
