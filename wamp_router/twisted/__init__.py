"""twisted"""
