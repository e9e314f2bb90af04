export { keys, keyNames, secretKeyNames } from "./keys";
export type { ConfigValues, KeyName, KeySpec, PulumiType } from "./keys";
export { loadStackConfig } from "./load";
export type { StackConfig } from "./load";
export { formatProblems, validateConfig } from "./validate";
export type { ConfigProblem, ProblemCode, RawConfig, ValidationResult } from "./validate";
