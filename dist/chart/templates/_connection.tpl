{{- /*
The ClusterDfnsConnection "default", the connection resources use when their spec.connectionRef
names none; it acts with the manager's mounted credentials. Helm maps every object of a release,
hooks included, before it creates the first, with a discovery it does not refresh: on a first
install, while the chart's CRDs (templates since crds.enabled) are not served yet, this object
cannot be part of the release, nor a hook. The manager then creates it (--default-connection,
see deployment.yaml) with the release's ownership labels and annotations, and the next upgrade,
which finds the CRD served, renders it here and adopts it.
*/}}
{{- define "dfns-operator.defaultConnection" -}}
{{- with .Values.defaultConnection }}
{{- $known := list "kinds" "operations" "permissionIds" "identityIds" "webhookURLs" "adoption" }}
{{- $limits := dict }}
{{- range $key, $value := (.limits | default dict) }}
{{- if not (has $key $known) }}
{{- fail (printf "defaultConnection.limits.%s is not a limit; use %s" $key (join ", " $known)) }}
{{- end }}
{{- if $value }}
{{- $_ := set $limits $key $value }}
{{- end }}
{{- end }}
apiVersion: access.dfns.io/v1alpha1
kind: ClusterDfnsConnection
metadata:
  name: default
  labels:
    {{- include "dfns-operator.labels" $ | nindent 4 }}
  annotations:
    meta.helm.sh/release-name: {{ $.Release.Name }}
    meta.helm.sh/release-namespace: {{ $.Release.Namespace }}
spec:
  credentials:
    mounted: {}
  {{- with .namespaceSelector }}
  namespaceSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .namespaces }}
  namespaces:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .namePrefix }}
  namePrefix: {{ . | quote }}
  {{- end }}
  {{- with .rateLimit }}
  rateLimit:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $limits }}
  limits:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
