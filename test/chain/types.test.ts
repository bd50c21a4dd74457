import { describe, expectTypeOf, test } from 'vitest'
import type { BlueprintSource as ChainSource } from '../../chain/evm/blueprint.js'
import type { BlueprintSource as ProvisionerSource } from '../../provisioners/types.js'

describe('BlueprintSource', () => {
  test('default: the chain decoder and the provisioners agree on the shape', () => {
    expectTypeOf<ChainSource>().toEqualTypeOf<ProvisionerSource>()
  })
})
