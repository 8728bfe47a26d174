package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/pulljobs/pulljobs/pkg/pipeline"
	"github.com/pulljobs/pulljobs/pkg/runstatus"
)

// Where deploy/k8s expects NATS: the official Helm chart, release "nats" in
// namespace "nats" (deploy/k8s/nats-values.yaml).
const (
	natsClientHost  = "nats.nats.svc.cluster.local"          // the chart's client Service
	natsMonitorHost = "nats-headless.nats.svc.cluster.local" // its headless Service, which has the monitoring port
)

var k8sDir = filepath.Join(repoRoot, "deploy", "k8s")

// kustomization is the part of kustomize's Kustomization that deploy/k8s
// uses, decoded strictly (kustomize's own types live in a heavy module).
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	Resources []string         `json:"resources"`
	Images    []kustomizeImage `json:"images,omitempty"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// scaledObject mirrors KEDA's ScaledObject (keda.sh/v1alpha1) as KEDA's
// documentation and CRD schema describe it, so that an unknown or
// misspelt field is refused as the API server would refuse it. KEDA's own
// Go types come with controller-runtime and most of Kubernetes.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion             string `json:"apiVersion,omitempty"`
			Kind                   string `json:"kind,omitempty"`
			Name                   string `json:"name"`
			EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
		} `json:"scaleTargetRef"`
		PollingInterval       *int32 `json:"pollingInterval,omitempty"`
		InitialCooldownPeriod *int32 `json:"initialCooldownPeriod,omitempty"`
		CooldownPeriod        *int32 `json:"cooldownPeriod,omitempty"`
		IdleReplicaCount      *int32 `json:"idleReplicaCount,omitempty"`
		MinReplicaCount       *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount       *int32 `json:"maxReplicaCount,omitempty"`
		Advanced              *struct {
			HorizontalPodAutoscalerConfig *struct {
				Name     string                                         `json:"name,omitempty"`
				Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
			RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
			ScalingModifiers              *struct {
				Formula          string `json:"formula,omitempty"`
				Target           string `json:"target,omitempty"`
				ActivationTarget string `json:"activationTarget,omitempty"`
				MetricType       string `json:"metricType,omitempty"`
			} `json:"scalingModifiers,omitempty"`
		} `json:"advanced,omitempty"`
		Fallback *struct {
			FailureThreshold int32  `json:"failureThreshold"`
			Replicas         int32  `json:"replicas"`
			Behavior         string `json:"behavior,omitempty"`
		} `json:"fallback,omitempty"`
		Triggers []scaleTrigger `json:"triggers"`
	} `json:"spec"`
}

type scaleTrigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// metricsAPIMetadata are the metadata keys of KEDA's metrics-api scaler
// (kedacore/keda, pkg/scalers/metrics_api_scaler.go). KEDA ignores any
// other: a misspelt key is a scaler that fails at run time.
var metricsAPIMetadata = []string{"url", "format", "valueLocation", "targetValue", "activationTargetValue", "unsafeSsl", "authMode"}

// backlogPath is where fetcher serve answers the fleet's backlog.
const backlogPath = "/backlog"

// natsValues is the part of the NATS Helm chart's values that
// nats-values.yaml sets, decoded strictly.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool    `json:"enabled"`
			Replicas int     `json:"replicas"`
			TLS      natsTLS `json:"tls"`
		} `json:"cluster"`
		NATS struct {
			TLS natsTLS `json:"tls"`
		} `json:"nats"`
		// Merge is merged into the chart's nats.conf; a key ending in
		// $include is an include directive.
		Merge     map[string]string `json:"merge"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir"`
				PVC     struct {
					Enabled bool   `json:"enabled"`
					Size    string `json:"size"`
				} `json:"pvc"`
			} `json:"fileStore"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port"`
		} `json:"monitor"`
	} `json:"config"`
	TLSCA struct {
		Enabled    bool   `json:"enabled"`
		SecretName string `json:"secretName"`
		Key        string `json:"key"`
	} `json:"tlsCA"`
	Container struct {
		Image struct {
			Tag string `json:"tag"`
		} `json:"image"`
		Env map[string]struct {
			ValueFrom *corev1.EnvVarSource `json:"valueFrom"`
		} `json:"env"`
		Patch []jsonPatch `json:"patch"`
	} `json:"container"`
	PodTemplate struct {
		Patch []jsonPatch `json:"patch"`
	} `json:"podTemplate"`
}

// natsTLS is a tls block of the NATS chart's values.
type natsTLS struct {
	Enabled    bool           `json:"enabled"`
	SecretName string         `json:"secretName"`
	Merge      map[string]any `json:"merge,omitempty"`
}

// jsonPatch is one operation of the chart's patch values (RFC 6902).
type jsonPatch struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// manifests is deploy/k8s decoded.
type manifests struct {
	kustomization kustomization
	deployments   map[string]*appsv1.Deployment
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	pdbs          map[string]*policyv1.PodDisruptionBudget
	scaledObjects map[string]*scaledObject
	namespaces    map[string]*corev1.Namespace
	services      map[string]*corev1.Service
	nats          natsValues
}

// decodeStrict decodes YAML into v as the API server's strict field
// validation does (kubectl apply --validate=strict): duplicate fields and
// unknown ones are errors, and field names are case-sensitive, which
// encoding/json (and so yaml.UnmarshalStrict) is not.
func decodeStrict(data []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// readManifests decodes every file of deploy/k8s strictly into the
// Kubernetes API type its apiVersion and kind name.
func readManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		scaledObjects: map[string]*scaledObject{}, namespaces: map[string]*corev1.Namespace{},
		services: map[string]*corev1.Service{},
	}
	read := func(name string, v any) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(k8sDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeStrict(data, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	read("kustomization.yaml", &m.kustomization)
	read("nats-values.yaml", &m.nats)
	for _, name := range m.kustomization.Resources {
		data, err := os.ReadFile(filepath.Join(k8sDir, name))
		if err != nil {
			t.Errorf("kustomization.yaml: resource %s: %v", name, err)
			continue
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			if err := m.add(doc); err != nil {
				t.Errorf("%s (document %d): %v", name, i+1, err)
			}
		}
	}
	return m
}

// add decodes one manifest strictly into its type.
func (m *manifests) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var (
		obj  any
		name func() string
	)
	switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
	case "apps/v1 Deployment":
		d := &appsv1.Deployment{}
		obj, name = d, func() string { m.deployments[d.Name] = d; return d.Name }
	case "v1 ConfigMap":
		c := &corev1.ConfigMap{}
		obj, name = c, func() string { m.configMaps[c.Name] = c; return c.Name }
	case "v1 Secret":
		s := &corev1.Secret{}
		obj, name = s, func() string { m.secrets[s.Name] = s; return s.Name }
	case "policy/v1 PodDisruptionBudget":
		p := &policyv1.PodDisruptionBudget{}
		obj, name = p, func() string { m.pdbs[p.Name] = p; return p.Name }
	case "keda.sh/v1alpha1 ScaledObject":
		s := &scaledObject{}
		obj, name = s, func() string { m.scaledObjects[s.Name] = s; return s.Name }
	case "v1 Service":
		sv := &corev1.Service{}
		obj, name = sv, func() string { m.services[sv.Name] = sv; return sv.Name }
	case "v1 Namespace":
		n := &corev1.Namespace{}
		obj, name = n, func() string { m.namespaces[n.Name] = n; return n.Name }
	default:
		return fmt.Errorf("%q: a kind these checks do not know", gvk)
	}
	if err := decodeStrict(doc, obj); err != nil {
		return fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	if name() == "" {
		return fmt.Errorf("%s without a name", tm.Kind)
	}
	return nil
}

func TestManifestsRefuseUnknownFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "deployment-pusher.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	typo := bytes.Replace(data, []byte("readOnlyRootFilesystem:"), []byte("readOnlyRootFileSystem:"), 1)
	if bytes.Equal(typo, data) {
		t.Fatal("deployment-pusher.yaml has no readOnlyRootFilesystem to misspell")
	}
	if err := new(manifests).add(typo); err == nil || !strings.Contains(err.Error(), "readOnlyRootFileSystem") {
		t.Errorf("a Deployment with readOnlyRootFileSystem: err = %v, want one naming the field", err)
	}
	var so scaledObject
	if err := decodeStrict([]byte("spec: {minReplicas: 0, scaleTargetRef: {name: x}}"), &so); err == nil {
		t.Error("a ScaledObject with spec.minReplicas: err = nil, want an unknown field")
	}
}

func TestKustomizationListsEveryFile(t *testing.T) {
	m := readManifests(t)
	k := m.kustomization
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if name := filepath.Base(f); name != "kustomization.yaml" && name != "nats-values.yaml" {
			want = append(want, name)
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources %q, want every manifest of deploy/k8s: %q", got, want)
	}
	if _, ok := m.namespaces[k.Namespace]; k.Namespace != "" && !ok {
		t.Errorf("kustomization.yaml: namespace %s is created by no manifest", k.Namespace)
	}
	for _, img := range k.Images {
		if img.NewTag == "latest" || img.NewTag == "" && img.Digest == "" {
			t.Errorf("kustomization.yaml: image %s: pin a tag other than latest", img.Name)
		}
	}
}

func TestDeployments(t *testing.T) {
	m := readManifests(t)
	if len(m.deployments) == 0 {
		t.Fatal("no Deployment")
	}
	roles := map[string]bool{}
	for name, d := range m.deployments {
		where := "Deployment " + name
		spec := d.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", where, len(spec.Containers))
			continue
		}
		c := spec.Containers[0]
		argv := append(slices.Clone(c.Command), c.Args...)
		r, profiles, ok := role(argv)
		if !ok {
			t.Errorf("%s: runs %q, not a worker", where, argv)
			continue
		}
		roles[filepath.Base(argv[0])] = true
		checkFlags(t, where, argv)
		checkImage(t, where, c.Image, m.kustomization)
		checkProbes(t, where, c, httpPort(t, where, argv))
		checkSecurity(t, where, spec, c)
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: resources %v: want cpu and memory requests, and a memory limit", where, c.Resources)
		}

		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not select its own pods (%v)", where, d.Spec.Selector, d.Spec.Template.Labels)
		}
		budgets := 0
		for _, p := range m.pdbs {
			if s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err == nil && !s.Empty() && s.Matches(labels.Set(d.Spec.Template.Labels)) {
				budgets++
			}
		}
		if budgets != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", where, budgets)
		}

		env := m.environment(t, where, c)
		if u := env["NATS_URL"]; !strings.HasPrefix(u, "tls://"+natsClientHost+":") {
			t.Errorf("%s: NATS_URL %q: want the NATS chart's service %s, over TLS", where, u, natsClientHost)
		}
		m.checkNATSRole(t, where, spec, c, natsRole(argv), env)
		for _, path := range m.configFiles(t, where, spec, c, argv, profiles) {
			cfg, ok := checkConfig(t, where, path, r, env)
			if servers := m.nats.Config.Cluster.Replicas; ok && cfg.Pipeline.Replicas != servers {
				t.Errorf("%s: %s: pipeline.replicas %d, want one replica per NATS server (%d)", where, filepath.Base(path), cfg.Pipeline.Replicas, servers)
			}
		}
	}
	for _, want := range []string{"formatter", "pusher", "fetcher"} {
		if !roles[want] {
			t.Errorf("no Deployment runs %s", want)
		}
	}
}

// checkNATSRole checks that a container logs in to NATS as role, with its
// password from the credentials' Secret, and trusts the NATS servers' CA
// from a ConfigMap mounted where NATS_CA says.
func (m *manifests) checkNATSRole(t *testing.T, where string, pod corev1.PodSpec, c corev1.Container, role string, env map[string]string) {
	t.Helper()
	if env["NATS_USER"] != role {
		t.Errorf("%s: NATS_USER %q, want its role %s", where, env["NATS_USER"], role)
	}
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NATS_PASSWORD" })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil || c.Env[i].ValueFrom.SecretKeyRef.Key != passwordVar(role) {
		t.Errorf("%s: NATS_PASSWORD: want the Secret's %s", where, passwordVar(role))
	}
	ca := env["NATS_CA"]
	for _, vm := range c.VolumeMounts {
		rest, ok := strings.CutPrefix(ca, vm.MountPath+"/")
		if !ok {
			continue
		}
		j := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if j < 0 || pod.Volumes[j].ConfigMap == nil || m.configMaps[pod.Volumes[j].ConfigMap.Name].Data[rest] == "" {
			t.Errorf("%s: NATS_CA %s: volume %s holds no ConfigMap with %s", where, ca, vm.Name, rest)
		}
		return
	}
	t.Errorf("%s: NATS_CA %q: no volume is mounted there", where, ca)
}

// checkImage checks that an image is pinned and that the kustomization's
// images entry applies to it.
func checkImage(t *testing.T, where, image string, k kustomization) {
	t.Helper()
	checkPinned(t, where+": image", image)
	if !slices.ContainsFunc(k.Images, func(i kustomizeImage) bool { return i.Name == imageRepo(image) }) {
		t.Errorf("%s: image %s: no images entry of kustomization.yaml names it, so none can set it", where, image)
	}
}

// checkProbes checks that the probes ask /healthz and /readyz on the port
// the process serves --http on.
func checkProbes(t *testing.T, where string, c corev1.Container, port int) {
	t.Helper()
	for _, p := range []struct {
		kind, path string
		probe      *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", where, p.kind)
			continue
		}
		got := containerPort(c, p.probe.HTTPGet.Port)
		if p.probe.HTTPGet.Path != p.path || got != port {
			t.Errorf("%s: %s probe GETs %s on port %d, want %s on %d (--http)", where, p.kind, p.probe.HTTPGet.Path, got, p.path, port)
		}
	}
}

// containerPort resolves a probe's port, a number or a port's name.
func containerPort(c corev1.Container, port intstr.IntOrString) int {
	if port.Type == intstr.Int {
		return port.IntValue()
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// checkSecurity checks that a container runs as non-root, on a read-only
// root file system, without privileges.
func checkSecurity(t *testing.T, where string, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext %v: want runAsNonRoot and a non-zero runAsUser", where, psc)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: container securityContext %v: want readOnlyRootFilesystem, no privilege escalation, every capability dropped", where, sc)
	}
}

// environment returns a container's environment as the process sees it,
// checking that each ConfigMap and Secret key it names exists. Secret
// values are replaced by valid stand-ins: the Secret is a template.
func (m *manifests) environment(t *testing.T, where string, c corev1.Container) map[string]string {
	t.Helper()
	standIns := map[string]string{"HRFLOW_BOARD_KEY": strings.Repeat("0", 40), "HRFLOW_API_USER": "me@example.com"}
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			t.Errorf("%s: envFrom %v: only ConfigMaps (secrets go key by key)", where, from)
			continue
		}
		cm, ok := m.configMaps[from.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: envFrom ConfigMap %s: no such ConfigMap", where, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if s, ok := m.secrets[ref.Name]; !ok || s.StringData[ref.Key] == "" {
				t.Errorf("%s: env %s: Secret %s has no key %s", where, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = "stand-in"
			if v, ok := standIns[e.Name]; ok {
				env[e.Name] = v
			}
		default:
			t.Errorf("%s: env %s: a source these checks do not know", where, e.Name)
		}
	}
	return env
}

// configFiles writes the files that a container's --config or --profiles
// names, from the ConfigMap mounted there, to a temporary directory.
func (m *manifests) configFiles(t *testing.T, where string, pod corev1.PodSpec, c corev1.Container, argv []string, profiles bool) []string {
	t.Helper()
	flag := "config"
	if profiles {
		flag = "profiles"
	}
	path, ok := flagValue(argv, flag)
	if !ok {
		if flag == "config" && filepath.Base(argv[0]) == "formatter" {
			return nil // its configuration is optional
		}
		t.Errorf("%s: no --%s", where, flag)
		return nil
	}
	for _, vm := range c.VolumeMounts {
		rest, ok := strings.CutPrefix(path, vm.MountPath)
		if !ok || rest != "" && rest[0] != '/' {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if i < 0 || pod.Volumes[i].ConfigMap == nil {
			break
		}
		cm, ok := m.configMaps[pod.Volumes[i].ConfigMap.Name]
		if !ok {
			t.Errorf("%s: volume %s: no ConfigMap %s", where, vm.Name, pod.Volumes[i].ConfigMap.Name)
			return nil
		}
		dir := t.TempDir()
		var files []string
		for key, data := range cm.Data {
			if profiles && rest == "" && strings.HasSuffix(key, ".yaml") || !profiles && "/"+key == rest {
				f := filepath.Join(dir, key)
				if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			t.Errorf("%s: --%s %s: ConfigMap %s has no such file", where, flag, path, cm.Name)
		}
		return files
	}
	t.Errorf("%s: --%s %s: no ConfigMap is mounted there", where, flag, path)
	return nil
}

func TestSecretTemplate(t *testing.T) {
	m := readManifests(t)
	want := []string{"FT_CLIENT_ID", "FT_CLIENT_SECRET", "HRFLOW_API_SECRET", "HRFLOW_API_USER", "HRFLOW_BOARD_KEY",
		passwordVar("formatter"), passwordVar("pusher"), passwordVar("serve")}
	if len(m.secrets) != 1 {
		t.Fatalf("%d Secrets, want the one credentials template", len(m.secrets))
	}
	for name, s := range m.secrets {
		if len(s.Data) > 0 {
			t.Errorf("Secret %s: data set: a template holds placeholders in stringData, never encoded values", name)
		}
		got := slices.Sorted(func(yield func(string) bool) {
			for k, v := range s.StringData {
				if !strings.Contains(v, "replace-me") {
					t.Errorf("Secret %s: %s is not a placeholder", name, k)
				}
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, want) {
			t.Errorf("Secret %s: keys %q, want %q", name, got, want)
		}
	}
}

func TestNATSHelmValues(t *testing.T) {
	values := readManifests(t).nats
	v := values.Config
	if !v.Cluster.Enabled || v.Cluster.Replicas != 3 {
		t.Errorf("cluster %+v: want three servers", v.Cluster)
	}
	js := v.JetStream
	if !js.Enabled || !js.FileStore.Enabled || !js.FileStore.PVC.Enabled || js.FileStore.PVC.Size == "" {
		t.Errorf("jetstream %+v: want JetStream with file storage on a persistent volume", js)
	}
	if !v.Monitor.Enabled || v.Monitor.Port <= 0 {
		t.Errorf("monitor %+v: want the monitoring port (Prometheus, the nats CLI)", v.Monitor)
	}
	checkNATSValuesSecured(t, values)
}

// checkNATSValuesSecured checks what the NATS values add to the chart's
// defaults for pulljobs: TLS for clients and mutual TLS on routes, and the
// users of deploy/nats/pulljobs-auth.conf, included from a ConfigMap
// mounted where the include looks, with every role's password from a
// Secret.
func checkNATSValuesSecured(t *testing.T, v natsValues) {
	t.Helper()
	c := v.Config
	if !c.NATS.TLS.Enabled || c.NATS.TLS.SecretName == "" || !v.TLSCA.Enabled || v.TLSCA.SecretName == "" {
		t.Errorf("nats.tls %+v, tlsCA %+v: want TLS for clients, with its CA", c.NATS.TLS, v.TLSCA)
	}
	if !c.Cluster.TLS.Enabled || c.Cluster.TLS.SecretName == "" || c.Cluster.TLS.Merge["verify"] != true {
		t.Errorf("cluster.tls %+v: want mutual TLS on routes (merge: verify: true)", c.Cluster.TLS)
	}
	include := c.Merge["$include"]
	// The chart's configuration is /etc/nats-config/nats.conf; NATS
	// resolves an include from its directory.
	path := filepath.Join("/etc/nats-config", include)
	if filepath.Base(path) != authFile {
		t.Errorf("config.merge.$include %q: want deploy/nats/%s", include, authFile)
	}
	var mount struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	}
	for _, p := range v.Container.Patch {
		if p.Op == "add" && p.Path == "/volumeMounts/-" && json.Unmarshal(p.Value, &mount) == nil && mount.MountPath == filepath.Dir(path) {
			break
		}
		mount.Name = ""
	}
	var volume corev1.Volume
	for _, p := range v.PodTemplate.Patch {
		if p.Op == "add" && p.Path == "/spec/volumes/-" && json.Unmarshal(p.Value, &volume) == nil && volume.Name == mount.Name && volume.ConfigMap != nil {
			break
		}
		volume = corev1.Volume{}
	}
	if mount.Name == "" || volume.Name == "" {
		t.Errorf("%s, the include of config.merge: no ConfigMap mounted there by container.patch and podTemplate.patch", path)
	}
	for _, r := range natsRoles {
		e, ok := v.Container.Env[passwordVar(r)]
		if !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != passwordVar(r) {
			t.Errorf("container.env: %s: want it from a Secret's key %s", passwordVar(r), passwordVar(r))
		}
	}
}

// scalerTargets returns the value each metrics-api trigger of the
// ScaledObjects reads (its valueLocation), by ScaledObject.
func scalerTargets(t *testing.T, m *manifests) map[string][]string {
	t.Helper()
	targets := map[string][]string{}
	for name, so := range m.scaledObjects {
		for i, tr := range so.Spec.Triggers {
			where := fmt.Sprintf("ScaledObject %s: trigger %d", name, i)
			if tr.Type != "metrics-api" {
				t.Errorf("%s: type %q, want metrics-api (each run has its consumers: no single one holds a stage's lag)", where, tr.Type)
				continue
			}
			for k := range tr.Metadata {
				if !slices.Contains(metricsAPIMetadata, k) {
					t.Errorf("%s: metadata %s: not a key of the metrics-api scaler (%q)", where, k, metricsAPIMetadata)
				}
			}
			targets[name] = append(targets[name], tr.Metadata["valueLocation"])
		}
	}
	return targets
}

func TestScaledObjects(t *testing.T) {
	m := readManifests(t)
	targets := scalerTargets(t, m)
	// What each worker consumes: the scaler that wakes it must read it.
	consumes := map[string]string{
		"formatter": runstatus.FormatterConsumer + ".lag",
		"pusher":    runstatus.PusherConsumer + ".lag",
	}
	// The backpressure that bounds what each worker consumes of a run: the
	// stage before it holds the run off past the bound, until half of it.
	bounds := map[string]int{"formatter": pipeline.DefaultOffersBacklog, "pusher": pipeline.DefaultJobsBacklog}
	scaled := map[string]bool{}
	for name, so := range m.scaledObjects {
		where := "ScaledObject " + name
		ref := so.Spec.ScaleTargetRef
		d, ok := m.deployments[ref.Name]
		if !ok || ref.Kind != "" && ref.Kind != "Deployment" {
			t.Errorf("%s: scaleTargetRef %+v: no such Deployment", where, ref)
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		binary := filepath.Base(append(slices.Clone(c.Command), c.Args...)[0])
		scaled[binary] = true
		if d.Spec.Replicas != nil {
			t.Errorf("%s: Deployment %s sets replicas: kubectl apply would fight KEDA over them", where, d.Name)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount != 0 {
			t.Errorf("%s: minReplicaCount %v, want 0: no worker between runs", where, so.Spec.MinReplicaCount)
		}
		if max := so.Spec.MaxReplicaCount; max == nil || *max < 1 {
			t.Errorf("%s: maxReplicaCount %v, want at least 1", where, max)
		}
		if want, ok := consumes[binary]; !ok || !slices.Contains(targets[name], want) {
			t.Errorf("%s: scales %s on %q, want a trigger on what it consumes, %q", where, binary, targets[name], want)
		}
		for i, tr := range so.Spec.Triggers {
			checkTrigger(t, m, fmt.Sprintf("%s: trigger %d", where, i), tr)
			target, err := strconv.Atoi(tr.Metadata["targetValue"])
			if err != nil || so.Spec.MaxReplicaCount == nil || tr.Metadata["valueLocation"] != consumes[binary] {
				continue
			}
			// The stage before keeps a run's lag between half the bound and
			// the bound: one run must bring every replica up.
			if full, bound := target*int(*so.Spec.MaxReplicaCount), bounds[binary]; full > bound/2 {
				t.Errorf("%s: targetValue %d × maxReplicaCount %d = %d, over half the backlog bound %d: the last replicas would come and go",
					where, target, *so.Spec.MaxReplicaCount, full, bound)
			}
		}
	}
	for binary := range consumes {
		if !scaled[binary] {
			t.Errorf("no ScaledObject scales the %s Deployment", binary)
		}
	}
}

// checkTrigger checks a metrics-api trigger's metadata as KEDA parses it:
// thresholds are numbers, and the URL is /backlog on a Service of
// deploy/k8s that selects the fetcher's pods, on the port their fetcher
// serve --http listens on.
func checkTrigger(t *testing.T, m *manifests, where string, tr scaleTrigger) {
	t.Helper()
	md := tr.Metadata
	if md["format"] != "" && md["format"] != "json" {
		t.Errorf("%s: format %q, want json", where, md["format"])
	}
	if n, err := strconv.ParseFloat(md["targetValue"], 64); err != nil || n <= 0 {
		t.Errorf("%s: targetValue %q: want a positive number", where, md["targetValue"])
	}
	if n, err := strconv.ParseFloat(md["activationTargetValue"], 64); err != nil || n < 0 {
		t.Errorf("%s: activationTargetValue %q: want a number ≥ 0", where, md["activationTargetValue"])
	}
	if md["valueLocation"] == "" {
		t.Errorf("%s: no valueLocation", where)
	}
	u, err := url.Parse(md["url"])
	if err != nil || u.Scheme != "http" || u.Path != backlogPath {
		t.Errorf("%s: url %q, want http://<the fetcher Service>%s", where, md["url"], backlogPath)
		return
	}
	svcName, rest, _ := strings.Cut(u.Hostname(), ".")
	if rest != m.kustomization.Namespace+".svc.cluster.local" {
		t.Errorf("%s: url host %q, want a Service of namespace %s", where, u.Hostname(), m.kustomization.Namespace)
	}
	svc, ok := m.services[svcName]
	if !ok {
		t.Errorf("%s: url %q: no Service %s in deploy/k8s", where, md["url"], svcName)
		return
	}
	fetcher := m.deployments["fetcher"]
	if fetcher == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(fetcher.Spec.Template.Labels)) {
		t.Errorf("%s: Service %s does not select the fetcher's pods", where, svcName)
		return
	}
	c := fetcher.Spec.Template.Spec.Containers[0]
	for _, p := range svc.Spec.Ports {
		if strconv.Itoa(int(p.Port)) != u.Port() {
			continue
		}
		for _, cp := range c.Ports {
			if (p.TargetPort.Type == intstr.String && cp.Name == p.TargetPort.StrVal) || (p.TargetPort.Type == intstr.Int && cp.ContainerPort == p.TargetPort.IntVal) {
				if !slices.Contains(c.Args, fmt.Sprintf(":%d", cp.ContainerPort)) {
					t.Errorf("%s: the fetcher's container port %d is not where its --http listens (%q)", where, cp.ContainerPort, c.Args)
				}
				return
			}
		}
	}
	t.Errorf("%s: url port %s: no port of Service %s leads to a port of the fetcher's container", where, u.Port(), svcName)
}
