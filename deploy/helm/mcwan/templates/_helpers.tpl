{{/*
Names are fixed, as in deploy/base: one mcwan per cluster, and the peers' kubeconfigs, the
CoreDNS block and docs/deploy.md name these objects. Selectors are deploy/base's too, so that a
release can take over a kustomize install (helm install --take-ownership).
*/}}

{{- define "mcwan.chart" -}}
{{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "mcwan.labels" -}}
app.kubernetes.io/name: mcwan
app.kubernetes.io/part-of: mcwan
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "mcwan.chart" . }}
{{- end }}

{{/* The selector of a workload: "mcwan.selector" (dict "component" "gateway"). */}}
{{- define "mcwan.selector" -}}
app.kubernetes.io/name: mcwan
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image, by digest when one is given. */}}
{{- define "mcwan.image" -}}
{{- $image := .Values.image -}}
{{- $repository := $image.repository -}}
{{- if $image.registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" $image.registry) $image.repository -}}
{{- end -}}
{{- if $image.digest -}}
{{ $repository }}@{{ $image.digest }}
{{- else -}}
{{ $repository }}:{{ $image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{- define "mcwan.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The clusterset file: clusterset.*, with wan and innerNetwork from wan.*. */}}
{{- define "mcwan.clusterset" -}}
{{- with .Values.clusterset.name }}
name: {{ toJson . }}
{{- end }}
wan: {{ .Values.wan.mode }}
{{- if and (eq .Values.wan.mode "wireguard") .Values.wan.wireguard.innerNetwork }}
innerNetwork: {{ .Values.wan.wireguard.innerNetwork }}
{{- end }}
clusters:
{{- toYaml .Values.clusterset.clusters | nindent 2 }}
{{- end }}

{{/* Checks of values that a schema cannot express; each failure names the value. */}}
{{- define "mcwan.validate" -}}
{{- $ids := list -}}
{{- range $i, $c := .Values.clusterset.clusters -}}
{{- if has $c.id $ids -}}
{{- fail (printf "clusterset.clusters[%d].id: %s is used twice" $i $c.id) -}}
{{- end -}}
{{- $ids = append $ids $c.id -}}
{{- if and (eq $.Values.wan.mode "sdwan") (not ($c.gateway).sdwanEdges) -}}
{{- fail (printf "clusterset.clusters[%d].gateway.sdwanEdges: cluster %s has no SD-WAN edges, which wan.mode sdwan needs (tunnel class -> next hop)" $i $c.id) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.clusterId (not (has .Values.clusterId $ids)) -}}
{{- fail (printf "clusterId: %s is not one of clusterset.clusters[].id (%s)" .Values.clusterId (join ", " $ids)) -}}
{{- end -}}
{{- range $i, $p := .Values.peers.kubeconfigs -}}
{{- if not (has $p.clusterId $ids) -}}
{{- fail (printf "peers.kubeconfigs[%d].clusterId: %s is not one of clusterset.clusters[].id (%s)" $i $p.clusterId (join ", " $ids)) -}}
{{- end -}}
{{- if eq $p.clusterId $.Values.clusterId -}}
{{- fail (printf "peers.kubeconfigs[%d].clusterId: %s is this cluster (clusterId), not a peer" $i $p.clusterId) -}}
{{- end -}}
{{- end -}}
{{- end }}
