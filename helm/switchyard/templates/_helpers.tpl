{{/* The release-scoped name of the chart's objects. */}}
{{- define "switchyard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "switchyard.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of the injector pods. */}}
{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}

{{/* The injector's image. */}}
{{- define "switchyard.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The sidecar's image: sidecar.image, falling back to image. */}}
{{- define "switchyard.sidecarImage" -}}
{{- $repo := .Values.sidecar.image.repository | default .Values.image.repository -}}
{{- $tag := .Values.sidecar.image.tag | default .Values.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The sidecar's environment beyond the downward API, as a name: value dict. */}}
{{- define "switchyard.sidecarEnv" -}}
{{- $env := dict -}}
{{- with .otel.endpoint }}{{ $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . }}{{ end -}}
{{- with .otel.protocol }}{{ $_ := set $env "OTEL_EXPORTER_OTLP_PROTOCOL" . }}{{ end -}}
{{- with .otel.resourceAttributes }}{{ $_ := set $env "OTEL_RESOURCE_ATTRIBUTES" . }}{{ end -}}
{{- range $name, $value := .extraEnv }}{{ $_ := set $env $name (toString $value) }}{{ end -}}
{{- toJson $env -}}
{{- end -}}

{{/*
The sidecar container, for users who cannot run the webhook and add it in their own
chart. It is the container the injector adds (keep the two in step). Call it with a dict:
  root:   the switchyard chart's context (e.g. `.` here, or `(dict "Values" .Values.switchyard "Chart" .Chart)`),
  policy: the value the switchyard.dev/policy annotation would have ("NAME", "NS/NAME",
          "configmap/NAME"), or "" for the embedded default policy.
In native mode place it under initContainers; in container mode under containers. The
keys volume it mounts is rendered by "switchyard.keysVolume". The app containers need
OPENAI_BASE_URL=http://127.0.0.1:4000/v1 and ANTHROPIC_BASE_URL=http://127.0.0.1:4000.
*/}}
{{- define "switchyard.sidecar" -}}
{{- $v := .root.Values.sidecar -}}
- name: switchyard
  image: {{ include "switchyard.sidecarImage" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args:
    - run
    - --listen
    - 127.0.0.1:4000
    - --admin
    - 0.0.0.0:4001
    - --drain-timeout
    - {{ $v.drainTimeout | quote }}
    - --log-format
    - json
    {{- if hasPrefix "configmap/" .policy }}
    - --policy-configmap
    - {{ trimPrefix "configmap/" .policy | quote }}
    {{- else if .policy }}
    - --policy-resource
    - {{ .policy | quote }}
    {{- end }}
  env:
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- range $name, $value := (include "switchyard.sidecarEnv" $v | fromJson) }}
    - name: {{ $name }}
      value: {{ $value | quote }}
    {{- end }}
  ports:
    - name: switchyard
      containerPort: 4001
      protocol: TCP
  livenessProbe:
    httpGet: {path: /healthz, port: 4001}
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet: {path: /readyz, port: 4001}
    periodSeconds: 5
    failureThreshold: 3
  startupProbe:
    httpGet: {path: /readyz, port: 4001}
    periodSeconds: 2
    failureThreshold: 60
  resources:
    {{- $requests := dict }}
    {{- range $k, $q := $v.resources.requests }}{{ if $q }}{{ $_ := set $requests $k $q }}{{ end }}{{ end }}
    {{- $limits := dict }}
    {{- range $k, $q := $v.resources.limits }}{{ if $q }}{{ $_ := set $limits $k $q }}{{ end }}{{ end }}
    {{- with $requests }}
    requests: {{ toJson . }}
    {{- end }}
    {{- with $limits }}
    limits: {{ toJson . }}
    {{- end }}
  securityContext:
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: {{ $v.runAsUser }}
    runAsGroup: {{ $v.runAsUser }}
    seccompProfile: {type: RuntimeDefault}
  {{- if $v.keysSecret }}
  volumeMounts:
    - name: switchyard-keys
      mountPath: /etc/switchyard/keys
      readOnly: true
  {{- end }}
  {{- if eq $v.mode "native" }}
  restartPolicy: Always
  {{- end }}
{{- end -}}

{{/* The pod volume of provider keys that "switchyard.sidecar" mounts; same dict. */}}
{{- define "switchyard.keysVolume" -}}
{{- with .root.Values.sidecar.keysSecret }}
- name: switchyard-keys
  secret:
    secretName: {{ . }}
    optional: true
{{- end }}
{{- end -}}
