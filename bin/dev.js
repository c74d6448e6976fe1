#!/usr/bin/env -S node --import tsx --no-warnings=ExperimentalWarning
// Runs the TypeScript sources directly (tsx; ts-node's ESM loader is broken on Node 20).
import { execute } from '@oclif/core';

await execute({ development: true, dir: import.meta.url });
