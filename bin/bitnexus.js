#!/usr/bin/env node
// The CLI is compiled from src/cli by `npm run build`; this shim keeps the
// package's bin stable whatever the build layout.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv);
