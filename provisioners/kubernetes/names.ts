/**
 * Names and ownership labels of what the Kubernetes provisioner creates. Every object lives in one namespace per
 * deployment, named by the deployment id; objects inside it share one fixed name.
 */

/** Label that marks objects written by this daemon. */
export const managedByLabel = 'app.kubernetes.io/managed-by'
/** Value of `managedByLabel`. */
export const managedByValue = 'blueprint-operator'
/** Label holding the operator id that owns the object. */
export const ownerLabel = 'blueprint-operator/owner'
/** Label holding the deployment id. */
export const deploymentLabel = 'blueprint-operator/deployment'
/** Annotation on the workload: the autoscaling upper bound to restore after a scale to zero. */
export const maxReplicasAnnotation = 'blueprint-operator/max-replicas'
/** Annotation on the workload: the replica count of the last provision. */
export const replicasAnnotation = 'blueprint-operator/replicas'
/** Annotation on the namespace: "Deployment" or "StatefulSet". */
export const workloadKindAnnotation = 'blueprint-operator/workload-kind'
/** Pod template annotation that `kubectl rollout restart` also uses. */
export const restartedAtAnnotation = 'kubectl.kubernetes.io/restartedAt'
/** Field manager of every write. */
export const fieldManager = 'blueprint-operator'
/** Name of the workload, Service and HPA inside the deployment's namespace. */
export const objectName = 'app'
/** Name of the volume claim template (PVCs are named `data-app-<ordinal>`). */
export const dataVolumeName = 'data'
/** Where the persistent volume is mounted in the container. */
export const dataMountPath = '/data'

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/** True when `s` is an RFC 1123 DNS label (what namespace names must be). */
export function isDnsLabel(s: string): boolean {
  return s.length > 0 && s.length <= 63 && dnsLabel.test(s)
}

/** True when `s` is a valid label value (at most 63 characters, alphanumeric at both ends). */
export function isLabelValue(s: string): boolean {
  return s.length <= 63 && labelValue.test(s)
}

/** Namespace of a deployment: the deployment id itself (validated by the caller with `isDnsLabel`). */
export function namespaceOf(deploymentId: string): string {
  return deploymentId
}

/** Ownership labels carried by the namespace and every object in it. */
export function ownershipLabels(operatorId: string, deploymentId: string): Record<string, string> {
  return { [managedByLabel]: managedByValue, [ownerLabel]: operatorId, [deploymentLabel]: deploymentId }
}

/** Label selector matching every namespace this operator owns. */
export function ownedSelector(operatorId: string): string {
  return `${managedByLabel}=${managedByValue},${ownerLabel}=${operatorId}`
}
