/** The labels every object of this program carries, plus its own name and component. */
export function labelsFor(name: string, component: string): Record<string, string> {
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "overlay",
        "app.kubernetes.io/managed-by": "pulumi",
    };
}

/** The labels that select a workload's pods: stable across upgrades. */
export function selectorFor(name: string): Record<string, string> {
    return { "app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "overlay" };
}

/** The labels that select the pods of every workload of one component, e.g. all subnet routers. */
export function componentSelector(component: string): Record<string, string> {
    return { "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "overlay" };
}
