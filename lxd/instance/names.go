package instance

import (
	"crypto/rand"
	"math/big"
)

var (
	adjectives = []string{"able", "bold", "brave", "calm", "clever", "eager", "fair", "fast", "glad", "keen", "kind", "lucid", "merry", "noble", "proud", "quick", "sharp", "steady", "swift", "witty"}
	nouns      = []string{"anchor", "beacon", "buoy", "cove", "dock", "ferry", "harbor", "jetty", "keel", "marina", "mast", "pier", "quay", "reef", "sail", "skiff", "tide", "wharf", "yacht", "helm"}
)

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
