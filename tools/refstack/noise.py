#!/usr/bin/python3
"""How far FP32 summation order alone moves the fixtures' quantization checks.

Runs the reference stack (refstack.py, Debian's python3-torch 1.13) in the fixtures' own
configuration (oneDNN limited to AVX2, 2 threads: bit-identical to ref/) and with only the
thread count or the instruction set changed, then q7 (CPU), and scores each against ref/ with
the fixture README's tolerances:
  calib  end-to-end amax vs amax.json: inputs within 4 bins (entropy) / 1 bin (max, mse,
         percentile) of the reference histogram's width; amax from each run's histograms
         and max by q7 calib --from-hist (q7's amax code matches the reference's on
         ref/histograms.json)
  layers first 10 layers of the fused fake-INT8 model with amax.json["mse"]: sum, abs_sum,
         L2 within 1e-4 relative of layers_qdq-mse.json
  table  fake-INT8 rows with the run's own amax: mAP50 and mAP50_95 within 0.05 of table.json

  tools/refstack/noise.py --q7 build/tools/q7 [--fixtures ../shared/fixtures]
                          [--models yolov7-tiny,yolov7] [--json out.json]
                          [--configs AVX2:2,AVX2:1,AVX512_CORE:2,SSE41:1,...]
The first configuration should be the fixtures' own (AVX2:2), whose row shows the stack
reproducing ref/ exactly. Needs Debian's python3-torch (apt-get install python3-torch).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = ['max', 'entropy', 'mse', 'percentile-99.9', 'percentile-99.99']
DEFAULT_CONFIGS = 'AVX2:2,AVX2:1,AVX512_CORE:2'  # oneDNN ISA cap : threads


def configs(spec):
    out = []
    for c in spec.split(','):
        isa, threads = c.split(':')
        out.append(('PyTorch %s, %s thread%s%s' % (isa, threads, 's' if threads != '1' else '',
                                                    ' (= ref/)' if c == 'AVX2:2' else ''),
                    isa, int(threads)))
    return out



def run(cmd, env=None):
    e = dict(os.environ, **(env or {}))
    r = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        sys.exit('failed (%d): %s\n%s' % (r.returncode, ' '.join(cmd), r.stdout[-3000:]))
    return r.stdout


def score_amax(amax, ref, hists):
    out = {}
    for m in METHODS:
        tol = 4 if m == 'entropy' else 1
        d = [abs(amax[m][k] - ref[m][k]) / (h['edge_max'] / h['num_bins'])
             for k, h in hists.items()]
        out[m] = dict(within=sum(x <= tol for x in d), n=len(d), tol=tol, worst=max(d))
    return out


def score_layers(layers, ref):
    worst = 0.0
    for a, b in zip(ref['layers'][:10], layers['layers'][:10]):
        for k in ('sum', 'abs_sum', 'l2'):
            worst = max(worst, abs(a[k] - b[k]) / abs(a[k]))
    return worst


def score_table(table, ref):
    return {r: max(abs(table[r][k] - ref[r][k]) for k in ('mAP50', 'mAP50_95'))
            for r in table if r.startswith('qdq-')}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--q7', required=True)
    ap.add_argument('--fixtures', default=os.path.join(HERE, '..', '..', '..', 'shared',
                                                       'fixtures'))
    ap.add_argument('--models', default='yolov7-tiny,yolov7')
    ap.add_argument('--json')
    ap.add_argument('--configs', default=DEFAULT_CONFIGS,
                    help='oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) and thread counts to run')
    a = ap.parse_args()
    refstack = [sys.executable, os.path.join(HERE, 'refstack.py')]
    results = {}
    tmp = tempfile.mkdtemp(prefix='q7-noise-')
    for model in a.models.split(','):
        d = os.path.join(a.fixtures, model)
        R = os.path.join(d, 'ref')
        ref_amax = json.load(open(os.path.join(R, 'amax.json')))
        hists = json.load(open(os.path.join(R, 'histograms.json')))
        ref_layers = json.load(open(os.path.join(R, 'layers_qdq-mse.json')))
        ref_table = json.load(open(os.path.join(R, 'table.json')))['table']
        res = results[model] = {}
        for name, isa, threads in configs(a.configs) + [('q7 (CPU, 2 threads)', None, 2)]:
            print('%s: %s ...' % (model, name), file=sys.stderr, flush=True)
            tag = os.path.join(tmp, '%s-%s-%d' % (model, isa or 'q7', threads))
            env = {'ONEDNN_MAX_CPU_ISA': isa} if isa else {}
            t = ['--threads', str(threads)]
            if isa:
                run(refstack + ['calib', '--model', d, '-o', tag + '-hist.json'] + t, env)
                run([a.q7, 'calib', '--weights', os.path.join(d, 'model.pt'), '--from-hist',
                     tag + '-hist.json', '--all-methods', '-o', tag + '-amax.json'])
                run(refstack + ['layers', '--model', d, '--amax', os.path.join(R, 'amax.json'),
                                '--method', 'mse', '-o', tag + '-layers.json'] + t, env)
                run(refstack + ['table', '--model', d, '--amax', tag + '-amax.json',
                                '--methods', ','.join(METHODS), '-o', tag + '-table.json'] + t,
                    env)
            else:
                data = os.path.join(d, 'data', 'val.txt')
                w = os.path.join(d, 'model.pt')
                run([a.q7, 'calib', '--weights', w, '--data', data, '--batch', '2',
                     '--decoder', 'turbo', '--all-methods', '-o', tag + '-amax.json'] + t)
                run([a.q7, 'run', '--weights', w, '--input',
                     os.path.join(R, 'input_%s.npy' % ref_layers['image']), '--amax',
                     os.path.join(R, 'amax.json'), '--method', 'mse', '--dump-layers',
                     tag + '-layers.json'] + t)
                run([a.q7, 'table', '--weights', w, '--data', data, '--batch', '2',
                     '--decoder', 'turbo', '--methods', ','.join(METHODS), '--json',
                     tag + '-table.json'] + t)
            res[name] = dict(
                calib=score_amax(json.load(open(tag + '-amax.json')), ref_amax, hists),
                layers=score_layers(json.load(open(tag + '-layers.json')), ref_layers),
                table=score_table(json.load(open(tag + '-table.json'))['table'], ref_table))
        print('\n%s (tolerances: calib entropy 4 bins, others 1 bin; layers 1e-4; table 0.05)'
              % model)
        print('| run | ' + ' | '.join('calib %s' % m for m in METHODS) +
              ' | layers 0-9 worst | table worst row |')
        print('|---|' + '--:|' * (len(METHODS) + 2))
        for name, r in res.items():
            c = r['calib']
            tw = max(r['table'].items(), key=lambda kv: kv[1])
            print('| %s | ' % name + ' | '.join(
                '%d/%d (max %.0f)' % (c[m]['within'], c[m]['n'], c[m]['worst'])
                for m in METHODS) + ' | %.2e | %s %.4f |' % (r['layers'], tw[0], tw[1]))
    if a.json:
        json.dump(results, open(a.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
