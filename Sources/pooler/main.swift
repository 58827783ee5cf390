import PoolerRuntime
PoolerMain.run()
