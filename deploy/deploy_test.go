// Package deploy_test checks the container image and Kubernetes manifests
// of deploy/: every manifest decodes strictly into the Kubernetes API types
// (an unknown or misspelt field fails), the shards are wired as the README
// says, and the Dockerfile builds what `make build` builds. The Kubernetes
// modules are test dependencies: the binary does not link them.
package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const (
	redisService = "pplx-batch-redis"
	sharedLimit  = "redis://" + redisService + ":6379/0"
	apiKeyEnv    = "PERPLEXITY_API_KEY"
	indexEnv     = "JOB_COMPLETION_INDEX"
)

// object is one decoded manifest.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// newObject returns an empty object of the Kubernetes type of apiVersion
// and kind, or nil for a kind these manifests have no business with.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "batch/v1 Job":
		return &batchv1.Job{}
	case "batch/v1 CronJob":
		return &batchv1.CronJob{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "v1 Pod":
		return &corev1.Pod{}
	}
	return nil
}

// splitDocs splits a multi-document YAML file on its "---" lines and drops
// the documents that hold only comments.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
			}
		}
		if !empty {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decode decodes one manifest strictly: unknown fields and duplicate keys
// are errors.
func decode(doc []byte) (object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return object{}, err
	}
	obj := newObject(tm.APIVersion, tm.Kind)
	if obj == nil {
		return object{}, fmt.Errorf("unexpected apiVersion %q kind %q", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	_ = yaml.Unmarshal(doc, &meta)
	if meta.Metadata.Name == "" {
		return object{}, fmt.Errorf("%s without a name", tm.Kind)
	}
	return object{kind: tm.Kind, name: meta.Metadata.Name, obj: obj}, nil
}

// loadManifests decodes every document of kubernetes/*.yaml.
func loadManifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in kubernetes/ (%v)", err)
	}
	var objs []object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(data) {
			o, err := decode(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
				continue
			}
			o.file = f
			objs = append(objs, o)
		}
	}
	return objs
}

func find[T any](objs []object, kind string) []T {
	var out []T
	for _, o := range objs {
		if o.kind == kind {
			out = append(out, *o.obj.(*T))
		}
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := loadManifests(t)
	seen := map[string]bool{}
	for _, o := range objs {
		if key := o.kind + "/" + o.name; seen[key] {
			t.Errorf("%s: %s defined twice", o.file, key)
		} else {
			seen[key] = true
		}
	}
	for _, want := range []string{"Job/pplx-batch-enrich", "CronJob/pplx-batch-nightly", "Deployment/" + redisService, "Service/" + redisService, "ConfigMap/pplx-batch-job", "PersistentVolumeClaim/pplx-batch-data"} {
		if !seen[want] {
			t.Errorf("no %s in kubernetes/", want)
		}
	}
}

// The decoder is strict: a misspelt field, a duplicate key or a wrong
// type fails, so these mistakes fail CI.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	data, err := os.ReadFile("kubernetes/job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"misspelt field", "  parallelism: 4", "  paralelism: 4"},
		{"field at the wrong level", "      restartPolicy: Never", "      restartPolicy: Never\n      completions: 4"},
		{"duplicate key", "  parallelism: 4", "  parallelism: 4\n  parallelism: 5"},
		{"wrong type", "  parallelism: 4", "  parallelism: four"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(data), tc.from, tc.to, 1)
			if bad == string(data) {
				t.Fatalf("%q not in job.yaml", tc.from)
			}
			if _, err := decode([]byte(bad)); err == nil {
				t.Errorf("job.yaml with a %s decodes without an error", tc.name)
			}
		})
	}
}

// Every shard of the Job and of the CronJob's Jobs: Indexed, one pod per
// index, --shard with the pod's index out of completions, the shared
// limit, its own output, the key from the Secret.
func TestShardedJobs(t *testing.T) {
	objs := loadManifests(t)
	claims := map[string]bool{}
	for _, c := range find[corev1.PersistentVolumeClaim](objs, "PersistentVolumeClaim") {
		claims[c.Name] = true
	}
	configMaps := map[string]bool{}
	for _, c := range find[corev1.ConfigMap](objs, "ConfigMap") {
		configMaps[c.Name] = true
	}
	specs := map[string]batchv1.JobSpec{}
	for _, j := range find[batchv1.Job](objs, "Job") {
		specs["Job "+j.Name] = j.Spec
	}
	for _, c := range find[batchv1.CronJob](objs, "CronJob") {
		specs["CronJob "+c.Name] = c.Spec.JobTemplate.Spec
		if c.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("CronJob %s: concurrencyPolicy %q, want Forbid (two nights must not share a budget)", c.Name, c.Spec.ConcurrencyPolicy)
		}
	}
	if len(specs) < 2 {
		t.Fatalf("want a Job and a CronJob, found %d", len(specs))
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			if spec.CompletionMode == nil || *spec.CompletionMode != batchv1.IndexedCompletion {
				t.Errorf("completionMode %v, want Indexed", spec.CompletionMode)
			}
			if spec.Completions == nil || spec.Parallelism == nil || *spec.Completions != *spec.Parallelism || *spec.Completions < 2 {
				t.Fatalf("completions %v, parallelism %v: want them equal, at least 2", spec.Completions, spec.Parallelism)
			}
			n := *spec.Completions
			pod := spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				env[e.Name] = e
			}
			args := strings.Join(append(slices.Clone(c.Command), c.Args...), " ")
			for _, want := range []string{
				fmt.Sprintf("--shard=$(%s)/%d", indexEnv, n),
				"--shared-limit=" + sharedLimit,
				"--job-id=$(",
				"--output=/data/",
			} {
				if !strings.Contains(args, want) {
					t.Errorf("args %q lack %q", args, want)
				}
			}
			if out := flagValue(c.Args, "--output"); !strings.Contains(out, "$("+indexEnv+")") || !strings.HasSuffix(out, ".parquet") {
				t.Errorf("--output=%q: want a Parquet file per shard, named with $(%s)", out, indexEnv)
			}
			// Kubernetes leaves an undefined $(VAR) as it is: every one must
			// be an env var of the container.
			for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(args, -1) {
				if _, ok := env[m[1]]; !ok {
					t.Errorf("args use $(%s), which is not an env var of the container", m[1])
				}
			}
			if e := env[indexEnv]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil ||
				e.ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
				t.Errorf("env %s: %+v, want the pod's job-completion-index annotation", indexEnv, e)
			}
			if e := env[apiKeyEnv]; e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
				e.ValueFrom.SecretKeyRef.Key != apiKeyEnv || e.ValueFrom.SecretKeyRef.Name == "" {
				t.Errorf("env %s: %+v, want it from a Secret's key %s", apiKeyEnv, e, apiKeyEnv)
			}
			if pod.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("restartPolicy %q, want Never (podFailurePolicy needs it)", pod.RestartPolicy)
			}
			if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("the pod does not require a non-root user")
			}
			volumes := map[string]bool{}
			for _, v := range pod.Volumes {
				volumes[v.Name] = true
				if v.PersistentVolumeClaim != nil && !claims[v.PersistentVolumeClaim.ClaimName] {
					t.Errorf("volume %s: claim %q is not in kubernetes/", v.Name, v.PersistentVolumeClaim.ClaimName)
				}
				if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] {
					t.Errorf("volume %s: ConfigMap %q is not in kubernetes/", v.Name, v.ConfigMap.Name)
				}
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("volumeMount %s: no such volume", m.Name)
				}
			}
		})
	}
}

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// The Service the shards reach Redis by selects the Redis Deployment's
// pods on 6379.
func TestRedisService(t *testing.T) {
	objs := loadManifests(t)
	var svc *corev1.Service
	for _, s := range find[corev1.Service](objs, "Service") {
		if s.Name == redisService {
			svc = &s
		}
	}
	var dep *appsv1.Deployment
	for _, d := range find[appsv1.Deployment](objs, "Deployment") {
		if d.Name == redisService {
			dep = &d
		}
	}
	if svc == nil || dep == nil {
		t.Fatalf("want a Service and a Deployment named %s", redisService)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 6379 {
		t.Errorf("Service ports %+v, want 6379", svc.Spec.Ports)
	}
	labels := dep.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the Deployment's pods (%v)", k, v, labels)
		}
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match its own pods (%v)", k, v, labels)
		}
	}
}

// The image runs `make build` itself, with cgo off, and ends on a small
// base image as a non-root user.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?m)^build:.*\n\t(.*)$`).FindStringSubmatch(string(mk))
	if recipe == nil {
		t.Fatal("no build target in the Makefile")
	}
	for _, flag := range []string{"-trimpath", `-ldflags "-X main.version=$(VERSION)"`, "./cmd/pplx-batch"} {
		if !strings.Contains(recipe[1], flag) {
			t.Errorf("make build (%q) no longer has %s: check that the Dockerfile still builds the same binary", recipe[1], flag)
		}
	}
	for _, want := range []string{
		"CGO_ENABLED=0 make build",      // the same build, static
		"FROM gcr.io/distroless/static", // CA certificates, no shell
		"USER 65532:65532",              // non-root, numeric for runAsNonRoot
		`ENTRYPOINT ["/usr/local/bin/pplx-batch"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
}

// The Kubernetes modules and the Redis test helper are for tests only.
func TestBinaryDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command(goBin, "list", "-deps", "./cmd/pplx-batch")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") || strings.HasSuffix(dep, "/internal/redistest") {
			t.Errorf("the binary depends on %s, a test-only package", dep)
		}
	}
}
