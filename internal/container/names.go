package container

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ValidName is docker's rule for a container name (without its leading
// slash).
var ValidName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CheckName refuses a name docker would refuse.
func CheckName(name string) error {
	if !ValidName.MatchString(name) {
		return fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument) //nolint:staticcheck // docker's words
	}
	return nil
}

// NewID is a fresh container ID: 32 random bytes in hex, as docker's.
func NewID() string {
	var b [32]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	// docker avoids IDs that are all digits: the CLI would take a short
	// form of one for a number.
	for _, c := range id[:12] {
		if c > '9' {
			return id
		}
	}
	return NewID()
}

// The words of generated names: adjective_surname, as docker names
// containers. The surnames are of scientists and engineers.
var (
	adjectives = []string{
		"agile", "amber", "bold", "brave", "bright", "busy", "calm", "clever", "cosmic", "crisp",
		"curious", "daring", "deft", "eager", "earnest", "fair", "fervent", "fond", "gentle", "glad",
		"golden", "happy", "hardy", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid",
		"merry", "mellow", "modest", "nimble", "noble", "patient", "plucky", "polite", "proud", "quick",
		"quiet", "rapid", "serene", "sharp", "silent", "sleepy", "smart", "steady", "stoic", "sunny",
		"swift", "tender", "tidy", "upbeat", "vivid", "warm", "wise", "witty", "zealous", "zen",
	}
	surnames = []string{
		"agnesi", "babbage", "bardeen", "bohr", "boole", "cannon", "carver", "curie", "darwin", "dijkstra",
		"einstein", "euler", "faraday", "fermi", "feynman", "franklin", "galileo", "gauss", "germain", "goodall",
		"hamilton", "hawking", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamarr", "leakey", "lovelace",
		"maxwell", "meitner", "mendel", "mirzakhani", "newton", "noether", "pascal", "pasteur", "planck", "raman",
		"ritchie", "sagan", "shannon", "somerville", "tesla", "thompson", "torvalds", "turing", "volta", "wozniak",
		"wright", "yalow", "yonath", "zuse", "lamport", "liskov", "hoare", "kay", "mccarthy", "perlman",
	}
)

// GenerateName picks a random adjective_surname; retry appends a digit,
// as docker does once plain names keep colliding.
func GenerateName(retry int) string {
	var b [8]byte
	rand.Read(b[:])
	n := binary.LittleEndian.Uint64(b[:])
	name := adjectives[n%uint64(len(adjectives))] + "_" + surnames[(n>>32)%uint64(len(surnames))]
	if retry > 0 {
		name += fmt.Sprint((n >> 16) % 10)
	}
	return name
}
