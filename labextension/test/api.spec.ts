import { AiaasApi, ApiError, readAnswer } from '../src/api';

function response(status: number, body: string, statusText = ''): Response {
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText,
    text: async () => body
  } as unknown as Response;
}

describe('AiaasApi', () => {
  it('builds paths and bodies for every call', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const api = new AiaasApi(async (path, init) => {
      calls.push([path, init]);
      if (path === 'jobs') {
        return { jobs: [{ id: 'j1' }] };
      }
      return path === 'sweeps' ? { sweeps: [{ id: 's1' }] } : { ok: path };
    });
    await api.models();
    await api.model('a b/c');
    expect(await api.jobs()).toEqual([{ id: 'j1' }]);
    expect(await api.sweeps()).toEqual([{ id: 's1' }]);
    await api.endpoints();
    await api.cluster();
    await api.deploy('iris', 'iris@prod');
    await api.deploy('iris');
    await api.undeploy('iris');
    expect(calls.map(c => c[0])).toEqual([
      'models',
      'models/a%20b%2Fc',
      'jobs',
      'sweeps',
      'endpoints',
      'cluster',
      'models/iris/deploy',
      'models/iris/deploy',
      'models/iris/undeploy'
    ]);
    expect(calls[6][1]).toEqual({
      method: 'POST',
      body: '{"ref":"iris@prod"}'
    });
    expect(calls[7][1]).toEqual({ method: 'POST', body: '{}' });
    expect(calls[8][1]?.method).toBe('POST');
  });
});

describe('readAnswer', () => {
  it('returns the JSON of a 2xx answer', async () => {
    await expect(readAnswer(response(200, '{"models": []}'))).resolves.toEqual({
      models: []
    });
  });

  it('turns the server message and hint into one ApiError line', async () => {
    const err = await readAnswer(
      response(
        404,
        '{"message": "no model named \'irs\'", "hint": "did you mean iris?"}'
      )
    ).catch(e => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(404);
    expect(err.line).toBe("no model named 'irs' (did you mean iris?)");
  });

  it('explains a 404 without JSON: the server extension is not enabled', async () => {
    const err = await readAnswer(
      response(404, '<html>Not Found</html>', 'Not Found')
    ).catch(e => e);
    expect(err.message).toBe('404 Not Found from the AIaaS server extension');
    expect(err.hint).toMatch(/jupyter server extension list/);
  });

  it('rejects a 2xx answer that is not JSON', async () => {
    await expect(readAnswer(response(200, 'oops'))).rejects.toThrow(
      'answered no JSON'
    );
  });
});
