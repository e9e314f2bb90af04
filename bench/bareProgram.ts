// The smallest Pulumi program: one resource. The yardstick for bench.ts.
import * as pulumi from "@pulumi/pulumi";

class Thing extends pulumi.CustomResource {
    constructor(name: string) {
        super("bench:index:Thing", name, { size: 1 });
    }
}

export const thing = new Thing("thing").urn;
