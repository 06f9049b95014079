{{/*
Labels on every object: the two the kustomize install sets, plus Helm's usual four.
*/}}
{{- define "keyguard.labels" -}}
app.kubernetes.io/name: keyguard
app.kubernetes.io/part-of: keyguard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/*
The webhook's pods. Fixed, like every name here: keyguard's webhook configurations are cluster-wide, so a cluster
runs one keyguard.
*/}}
{{- define "keyguard.selectorLabels" -}}
app.kubernetes.io/name: keyguard
app.kubernetes.io/component: webhook
{{- end }}

{{- define "keyguard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
One webhook of either configuration: the same scope, failure policy and selection for both, so that an outage can
only hold back Flyte task pods.
*/}}
{{- define "keyguard.webhook" -}}
- name: {{ .name }}.keyguard.flyte.org
  admissionReviewVersions: [v1]
  clientConfig:
    service:
      name: keyguard
      namespace: {{ .root.Release.Namespace }}
      path: /{{ .name }}
      port: 443
  failurePolicy: {{ .root.Values.webhook.failurePolicy }}
  sideEffects: None
  timeoutSeconds: {{ .root.Values.webhook.timeoutSeconds }}
  {{- if eq .name "mutate" }}
  reinvocationPolicy: IfNeeded
  {{- end }}
  rules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [pods]
      scope: Namespaced
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [UPDATE]
      resources: [pods/ephemeralcontainers]
      scope: Namespaced
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: {{ append .root.Values.webhook.excludedNamespaces .root.Release.Namespace | uniq | toJson }}
  matchConditions:
    # Mirrors the policy's default selection: Flyte 1 labels, Flyte 2 labels, or a flyteworkflow owner.
    - name: flyte-task-pod
      expression: |-
        has(object.metadata.labels) && (
          ('execution-id' in object.metadata.labels && 'node-id' in object.metadata.labels) ||
          ('project' in object.metadata.labels && 'domain' in object.metadata.labels &&
            ('run' in object.metadata.labels || 'action' in object.metadata.labels))
        ) ||
        (has(object.metadata.ownerReferences) &&
          object.metadata.ownerReferences.exists(r, r.kind == 'flyteworkflow'))
{{- end }}

{{- define "keyguard.webhookMetadata" -}}
metadata:
  name: keyguard
  labels:
    {{- include "keyguard.labels" . | nindent 4 }}
  {{- if eq .Values.certificates.source "cert-manager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/keyguard-serving
  {{- end }}
{{- end }}
