/** A blueprint source as published by its developer: what the daemon is trusted to run, exactly. */

export type BlueprintSource =
  /** A native executable fetched over HTTP(S), verified by sha256 (64 lowercase hex chars) before it is run. */
  | { kind: 'native'; url: string; sha256: string }
  /** An OCI image pinned by digest: `image` without tag or digest (e.g. "localhost:5000/echo"), `digest` "sha256:<64 hex>". */
  | { kind: 'container'; image: string; digest: string }
  /** A test source (dev only, refused unless the operator allows it): a native artifact like `native`. */
  | { kind: 'testing'; url: string; sha256: string }

export type SourceKind = BlueprintSource['kind']
