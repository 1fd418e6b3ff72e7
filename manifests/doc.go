// Package manifests holds the deployable YAML of kubectl-etcd: the backup
// CronJob for the control plane's etcd, an application etcd StatefulSet and
// the RBAC a user of the plugin needs. Its tests decode every document
// strictly and check what an operator would check before applying them.
package manifests
