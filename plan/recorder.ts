// Runs the program under Pulumi's mock runtime and records every resource registration
// exactly as the SDK sends it to the engine: type, name, parent, dependencies, provider,
// additionalSecretOutputs and the serialised inputs (secrets still marked as secrets).
import * as pulumi from "@pulumi/pulumi";
import { computedOutputs } from "./mocks";

export interface RecordedResource {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly custom: boolean;
    readonly parent: string;
    readonly dependencies: string[];
    readonly provider: string;
    readonly additionalSecretOutputs: string[];
    /** The resource whose deletion makes this one's delete unnecessary ("" for none). */
    readonly deletedWith: string;
    /** Inputs in wire form: see values.ts. */
    readonly inputs: unknown;
}

interface RegisterResourceRequest {
    getType(): string;
    getName(): string;
    getCustom(): boolean;
    getParent(): string;
    getDependenciesList(): string[];
    getProvider(): string;
    getAdditionalsecretoutputsList(): string[];
    getDeletedwith(): string;
    getObject(): { toJavaScript(): unknown } | undefined;
}

type Callback = (err: unknown, response?: { getUrn(): string }) => void;

/**
 * Installs the mock runtime and starts recording.
 * @returns the list that fills up as the program registers resources.
 */
export async function startRecording(project: string, stack: string): Promise<RecordedResource[]> {
    const recorded: RecordedResource[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => ({
                id: `${args.name}-id`,
                state: { ...args.inputs, ...computedOutputs(args.type, args.name, args.inputs) },
            }),
            call: (args) => {
                throw new Error(`Mock not implemented: ${args.token}`);
            },
        },
        project,
        stack,
        false, // evaluate as `pulumi up` would, not as a preview
        "organization", // what a self-managed (file) backend calls every organization
    );

    const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterResourceRequest, cb: Callback): void };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, callback) =>
        register(req, (err, response) => {
            if (!err && response) {
                recorded.push({
                    urn: response.getUrn(),
                    type: req.getType(),
                    name: req.getName(),
                    custom: req.getCustom(),
                    parent: req.getParent(),
                    dependencies: req.getDependenciesList(),
                    provider: req.getProvider(),
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                    deletedWith: req.getDeletedwith(),
                    inputs: req.getObject()?.toJavaScript() ?? {},
                });
            }
            callback(err, response);
        });
    return recorded;
}
