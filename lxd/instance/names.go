package instance

import (
	"crypto/rand"
	"math/big"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

var (
	adjectives = []string{"able", "bold", "brave", "calm", "clever", "eager", "fair", "fast", "glad", "keen", "kind", "lucid", "merry", "noble", "proud", "quick", "sharp", "steady", "swift", "witty"}
	nouns      = []string{"anchor", "beacon", "buoy", "cove", "dock", "ferry", "harbor", "jetty", "keel", "marina", "mast", "pier", "quay", "reef", "sail", "skiff", "tide", "wharf", "yacht", "helm"}
)

// NameRequest gives a request without a name one, as LXD does, and checks the name: a
// 400 naming the problem when it is not a valid instance name.
func NameRequest(req *api.InstancesPost) error {
	if req.Name == "" {
		req.Name = generateName()
	}

	err := validate.InstanceName(req.Name)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	return nil
}

// generateName returns two random words joined by '-', as LXD names unnamed instances.
func generateName() string {
	return pick(adjectives) + "-" + pick(nouns)
}

func pick(words []string) string {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(words))))
	if err != nil {
		return words[0]
	}

	return words[n.Int64()]
}
