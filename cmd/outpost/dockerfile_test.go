package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile: no container engine runs in CI here (the Docker client
// has no daemon, and base images cannot be pulled), so this checks what
// the image is made of: the build stage runs "make build", whose output
// .ci/run checks to be static and stamped, and the image is that binary on
// an empty base, as a non-root user, with its state in a /data volume.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^RUN make build\b`),
		regexp.MustCompile(`(?m)^FROM scratch$`),
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?m)^VOLUME \["/data"\]$`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/outpost"\]$`),
		regexp.MustCompile(`org\.opencontainers\.image\.licenses="Apache-2\.0"`),
	} {
		if !want.MatchString(df) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	// The last stage is the empty one: nothing of the build stage ships
	// but what is copied.
	if last := df[strings.LastIndex(df, "\nFROM "):]; !strings.HasPrefix(last, "\nFROM scratch") {
		t.Errorf("the final stage is not FROM scratch: %q", last[:40])
	}
}
