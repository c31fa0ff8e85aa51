// Package build turns a Dockerfile and its context into an image, the way
// docker's legacy builder does (POST /build): one image per instruction,
// each step looked up in a layer cache first.
//
// The Dockerfile is parsed by buildkit's parser and words are expanded by
// its shell lexer; everything after that is here: the stages, ARG and ENV
// scoping, the image config and history each instruction makes, COPY/ADD
// from the context or another stage, and the cache keys.
//
// It knows nothing of containers, snapshots or the image store: RUN, the
// filesystem steps and commits go through Backend, which the daemon
// implements (internal/image serves only to parse references and
// platforms; internal/archive extracts the context and ADD's archives).
// It owns, under the directory given to New:
//
//	cache.json    the layer cache: step key → image ID, written atomically
//	ctx-*/        a build's unpacked context, removed when the build ends
package build
