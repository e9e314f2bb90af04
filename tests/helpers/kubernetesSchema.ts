// Validates a manifest against the Kubernetes OpenAPI schema, offline (kubernetes-models).

/** Rejects with the schema's complaints when the manifest is not a valid object of its kind. */
export async function validateManifest(manifest: { apiVersion: string; kind: string }): Promise<void> {
    // Modules are laid out by apiVersion: kubernetes-models/v1/Secret, kubernetes-models/apps/v1/StatefulSet.
    // kubernetes-models 5 is ES modules only, hence import() rather than require().
    const model = (await import(`kubernetes-models/${manifest.apiVersion}/${manifest.kind}`))[manifest.kind];
    if (typeof model !== "function") throw new Error(`kubernetes-models has no ${manifest.apiVersion} ${manifest.kind}`);
    new model(manifest).validate();
}
