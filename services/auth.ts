// PROTOCOL.md §1: what a verified token must hold, and who may join which project.
import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

export const Claims = Type.Object({
  sub: Type.String({ minLength: 1 }),
  exp: Type.Number(),
  nbf: Type.Optional(Type.Number()),
  iat: Type.Optional(Type.Number()),
  projects: Type.Array(Type.String()),
  name: Type.Optional(Type.String()),
  email: Type.Optional(Type.String())
})
export type Claims = Static<typeof Claims>
const checkClaims = TypeCompiler.Compile(Claims)

/** The authenticated caller, as the registry and an `authorize` hook see it. */
export interface RegistryUser {
  sub: string
  name?: string
  email?: string
  projects: string[]
  /** Expiry of the token, seconds since the epoch. */
  exp: number
  claims: Readonly<Record<string, unknown>>
}

export type Authorize = (user: RegistryUser, projectId: string) => boolean | Promise<boolean>

export type VerifyOutcome = { ok: true, user: RegistryUser } | { ok: false, message: string }

/** Turns a signature-checked payload into a user, or says why its claims are malformed. */
export function userFromClaims (payload: unknown): VerifyOutcome {
  if (!checkClaims.Check(payload)) {
    const err = checkClaims.Errors(payload).First()
    return { ok: false, message: `malformed token: ${err === undefined ? 'bad claims' : `${err.path.slice(1)} ${err.message}`}` }
  }
  const user: RegistryUser = { sub: payload.sub, projects: payload.projects, exp: payload.exp, claims: payload }
  if (payload.name !== undefined) user.name = payload.name
  if (payload.email !== undefined) user.email = payload.email
  return { ok: true, user }
}

export function grantedByClaims (user: RegistryUser, projectId: string): boolean {
  return user.projects.includes('*') || user.projects.includes(projectId)
}

/** A boolean when no `authorize` hook decides (callers on the upgrade path need not wait a turn). */
export function isGranted (user: RegistryUser, projectId: string, authorize: Authorize | undefined): boolean | Promise<boolean> {
  if (authorize === undefined) return grantedByClaims(user, projectId)
  return authorize(user, projectId)
}
