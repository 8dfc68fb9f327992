// Parse and type-check KQL with Microsoft's Kusto language service, offline.
// Reads a JSON object {label: query text} on stdin; prints {label: [diagnostic, ...]} where
// each diagnostic is {code, severity, message, start, length}. Exits 0 unless it cannot run.
"use strict";

const fs = require("fs");
const path = require("path");

// The package is a Bridge.NET build of Kusto.Language: the runtime defines globals first.
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");

const Kusto = globalThis.Kusto.Language;

function globalsFor(schemaFile) {
  const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
  const columns = Object.entries(schema.columns).map(([name, type]) => `${name}:${type}`);
  const table = new Kusto.Symbols.TableSymbol.$ctor7(
    schema.table,
    `(${columns.join(", ")})`,
    schema.about,
  );
  const database = new Kusto.Symbols.DatabaseSymbol.$ctor1("appinsights", [table], false);
  return Kusto.GlobalState.Default.WithDatabase(database);
}

function diagnose(text, globals) {
  const found = Kusto.KustoCode.ParseAndAnalyze(text, globals).GetDiagnostics();
  const out = [];
  for (let index = 0; index < found.Count; index += 1) {
    const item = found.getItem(index);
    out.push({
      code: item.Code,
      severity: item.Severity,
      message: item.Message,
      start: item.Start,
      length: item.Length,
    });
  }
  return out;
}

function main() {
  const globals = globalsFor(path.join(__dirname, "customEvents.json"));
  const queries = JSON.parse(fs.readFileSync(0, "utf8"));
  const result = {};
  for (const [label, text] of Object.entries(queries)) {
    result[label] = diagnose(text, globals);
  }
  process.stdout.write(JSON.stringify(result));
}

main();
