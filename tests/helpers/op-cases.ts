/** Case tables shared by the CPU reference tests and the WebGPU tests of the same ops. */

/** Einsum equations with operand shapes: contractions, diagonals, traces, ellipsis broadcasting, implicit outputs. */
export const EINSUM_CASES: [string, number[][]][] = [
  ['ij,jk->ik', [[3, 4], [4, 5]]],
  ['bij,bjk->bik', [[2, 3, 4], [2, 4, 3]]],
  ['ij,jk', [[2, 3], [3, 4]]],
  ['ij->ji', [[3, 5]]],
  ['ii->i', [[4, 4]]],
  ['ii', [[5, 5]]],
  ['bii->bi', [[3, 4, 4]]],
  ['ij->', [[3, 4]]],
  ['i,i', [[7], [7]]],
  ['i,j->ij', [[3], [4]]],
  ['...ij,...jk->...ik', [[2, 1, 3, 4], [2, 5, 4, 2]]],
  ['...i->...', [[2, 3, 4]]],
  ['ij...,jk...->ik...', [[2, 3, 5], [3, 4, 5]]],
  ['ij,jk,kl->il', [[2, 3], [3, 4], [4, 2]]],
  ['iij,kj->ik', [[3, 3, 4], [2, 4]]],
  ['abc,cd', [[2, 1, 3], [3, 2]]],
  // Matrix products in disguise (the WebGPU kernel runs them on the tiled MatMul): transposed operands, odd sizes.
  ['ji,jk->ik', [[5, 7], [5, 9]]],
  ['ij,kj->ik', [[13, 6], [11, 6]]],
  ['bji,bjk->bik', [[3, 17, 5], [3, 17, 19]]],
  ['bij,jk->bik', [[2, 33, 7], [7, 65]]],
];
