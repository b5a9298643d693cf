/**
 * `npm run check:examples`: the docs of every public module are checked the way `@effect/docgen` checks them.
 *
 * - Every export of every public module (src/ without `internal/` folders) has a docstring with `@since` and
 *   `@category` (module re-exports in an `index.ts` included).
 * - Every ```ts block under an `@example` tag compiles against the package: the blocks are type-checked in
 *   memory with the repository's compiler options, `effect-scheduler-registry` mapped to `src/index.ts` and
 *   `effect-scheduler-registry/<layer>` to `src/<layer>/index.ts`. Nothing is run.
 *
 * Each failure is printed as `file:line: message`, the line being the one in the source docstring; the exit
 * code is 1 if there was any.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import ts from "typescript"

const root = Path.resolve(import.meta.dirname, "..")
const srcDir = Path.join(root, "src")
const examplesDir = Path.join(root, ".examples")

const publicModules = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = Path.join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "internal" ? [] : publicModules(path)
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : []
  })

interface Doc {
  readonly text: string
  /** 0-based line of the comment's first line in its file. */
  readonly line: number
}

/** The last `/** … *\/` comment right before `node`, if any. */
const docOf = (source: ts.SourceFile, node: ts.Node): Doc | undefined => {
  const ranges = ts.getLeadingCommentRanges(source.text, node.pos) ?? []
  const last = ranges.filter((r) => source.text.startsWith("/**", r.pos)).at(-1)
  if (last === undefined) return undefined
  return { text: source.text.slice(last.pos, last.end), line: source.getLineAndCharacterOfPosition(last.pos).line }
}

const isExported = (node: ts.Node): boolean =>
  ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword)

/** The names an exported statement declares (one per statement in practice). */
const exportedNames = (node: ts.Statement): Array<string> => {
  if (ts.isExportDeclaration(node)) {
    if (node.exportClause === undefined) return ["*"]
    if (ts.isNamespaceExport(node.exportClause)) return [node.exportClause.name.text]
    return node.exportClause.elements.map((e) => e.name.text)
  }
  if (ts.isExportAssignment(node)) return ["default"]
  if (!isExported(node)) return []
  if (ts.isVariableStatement(node))
    return node.declarationList.declarations.map((d) => (ts.isIdentifier(d.name) ? d.name.text : "?"))
  const name = (node as { name?: ts.Node }).name
  return [name !== undefined && ts.isIdentifier(name) ? name.text : "?"]
}

interface Example {
  readonly file: string
  /** 0-based line in `file` of the example's first code line. */
  readonly line: number
  readonly code: string
}

const problems: Array<string> = []
const examples: Array<Example> = []
let exportCount = 0

for (const file of publicModules(srcDir)) {
  const rel = Path.relative(root, file)
  const source = ts.createSourceFile(file, Fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true)
  const seen = new Set<string>()
  for (const statement of source.statements) {
    const names = exportedNames(statement).filter((n) => !seen.has(n))
    if (names.length === 0) continue
    for (const n of names) seen.add(n)
    exportCount++
    const at = `${rel}:${source.getLineAndCharacterOfPosition(statement.getStart()).line + 1}`
    const doc = docOf(source, statement)
    if (doc === undefined) {
      problems.push(`${at}: ${names.join(", ")} has no docstring`)
      continue
    }
    if (!/@since \d+\.\d+\.\d+/.test(doc.text)) problems.push(`${at}: ${names.join(", ")} lacks @since`)
    if (!/@category \S/.test(doc.text)) problems.push(`${at}: ${names.join(", ")} lacks @category`)
    const lines = doc.text.split("\n").map((l) => l.replace(/^\s*\/?\*+\/?\s?/, "").replace(/\s*\*\/\s*$/, ""))
    let inExample = false
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!
      if (l.startsWith("@")) inExample = l.startsWith("@example")
      if (!inExample || !/^```(ts|typescript)\s*$/.test(l.trim())) continue
      const end = lines.findIndex((m, j) => j > i && m.trim() === "```")
      if (end === -1) {
        problems.push(`${rel}:${doc.line + i + 1}: unclosed code block`)
        break
      }
      examples.push({ file: rel, line: doc.line + i + 1, code: lines.slice(i + 1, end).join("\n") })
      i = end
    }
  }
}

// Type-check every example in memory, each one as its own module under `.examples/`.
const config = ts.getParsedCommandLineOfConfigFile(
  Path.join(root, "tsconfig.json"),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"))
    }
  }
)!
const layers = Fs.readdirSync(srcDir).filter((d) => Fs.existsSync(Path.join(srcDir, d, "index.ts")))
const options: ts.CompilerOptions = {
  ...config.options,
  noEmit: true,
  noUnusedLocals: false,
  noUnusedParameters: false,
  baseUrl: root,
  paths: {
    "effect-scheduler-registry": ["./src/index.ts"],
    ...Object.fromEntries(layers.map((l) => [`effect-scheduler-registry/${l}`, [`./src/${l}/index.ts`]]))
  }
}
const virtual = new Map(examples.map((e, i) => [Path.join(examplesDir, `example${i}.ts`), e]))
const host = ts.createCompilerHost(options)
const getSourceFile = host.getSourceFile.bind(host)
host.getSourceFile = (name, version, onError, create) => {
  const example = virtual.get(Path.resolve(name))
  return example !== undefined
    ? ts.createSourceFile(name, example.code, version)
    : getSourceFile(name, version, onError, create)
}
const fileExists = host.fileExists.bind(host)
host.fileExists = (name) => virtual.has(Path.resolve(name)) || fileExists(name)
const readFile = host.readFile.bind(host)
host.readFile = (name) => virtual.get(Path.resolve(name))?.code ?? readFile(name)

const program = ts.createProgram([...virtual.keys()], options, host)
for (const d of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(d.messageText, "\n")
  const example = d.file === undefined ? undefined : virtual.get(Path.resolve(d.file.fileName))
  if (d.file === undefined || d.start === undefined) problems.push(`error: ${message}`)
  else if (example === undefined) {
    const { line } = d.file.getLineAndCharacterOfPosition(d.start)
    problems.push(`${Path.relative(root, d.file.fileName)}:${line + 1}: ${message} (while checking the examples)`)
  } else {
    const { line } = d.file.getLineAndCharacterOfPosition(d.start)
    problems.push(`${example.file}:${example.line + line + 1}: example: ${message}`)
  }
}

for (const p of problems) console.error(p)
console.log(`${exportCount} public exports, ${examples.length} examples checked, ${problems.length} problems`)
process.exitCode = problems.length === 0 ? 0 : 1
