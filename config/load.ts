import * as pulumi from "@pulumi/pulumi";
import * as pulumiConfig from "@pulumi/pulumi/runtime/config";
import { ConfigValues } from "./keys";
import { formatProblems, RawConfig, validateConfig } from "./validate";

type SecretKeyName = "vpsSshPrivateKey" | "tlsPrivateKey" | "backupIdentity";

/** The validated stack configuration. Secret values exist only as secret Outputs. */
export type StackConfig = Omit<ConfigValues, SecretKeyName> & { readonly [K in Exclude<SecretKeyName, "backupIdentity">]: pulumi.Output<string> } & {
    /** Unset when empty: the program generates one. */
    readonly backupIdentity: pulumi.Output<string> | undefined;
};

/**
 * Reads and validates the stack's configuration from the Pulumi runtime.
 * @throws pulumi.RunError listing every problem (Pulumi prints it without a stack trace).
 */
export function loadStackConfig(): StackConfig {
    const result = validateConfig(readRawConfig());
    if (!result.ok) throw new pulumi.RunError(formatProblems(result.problems));
    const { vpsSshPrivateKey, tlsPrivateKey, backupIdentity, ...plain } = result.values;
    return {
        ...plain,
        vpsSshPrivateKey: pulumi.secret(vpsSshPrivateKey),
        tlsPrivateKey: pulumi.secret(tlsPrivateKey),
        backupIdentity: backupIdentity ? pulumi.secret(backupIdentity) : undefined,
    };
}

function readRawConfig(): RawConfig {
    const values = pulumi.runtime.allConfig();
    return {
        project: pulumi.getProject(),
        values,
        secretKeys: new Set(Object.keys(values).filter(isConfigSecret)),
    };
}

// The SDK exports isConfigSecret without declaring it; a test fails if that ever changes.
function isConfigSecret(key: string): boolean {
    const check = (pulumiConfig as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    if (typeof check !== "function") {
        throw new pulumi.RunError("This @pulumi/pulumi version no longer exports runtime.isConfigSecret; the program cannot tell secret config from plain text.");
    }
    return check(key);
}
