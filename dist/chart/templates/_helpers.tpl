{{/* The name prefix of every object of the release. */}}
{{- define "dfns-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "dfns-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Labels that select the manager's pods. */}}
{{- define "dfns-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end -}}

{{/* The metrics Service's name. */}}
{{- define "dfns-operator.metricsService" -}}
{{- include "dfns-operator.fullname" . }}-controller-manager-metrics-service
{{- end -}}

{{/* The Secret with the metrics certificate (tls.crt, tls.key, ca.crt); empty: none, the
manager serves a self-signed certificate. */}}
{{- define "dfns-operator.metricsCertSecret" -}}
{{- if .Values.metrics.certManager.enabled -}}
{{- include "dfns-operator.fullname" . }}-metrics-cert
{{- else -}}
{{- .Values.metrics.certSecret -}}
{{- end -}}
{{- end -}}
